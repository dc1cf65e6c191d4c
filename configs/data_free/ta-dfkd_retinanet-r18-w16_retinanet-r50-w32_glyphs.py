# TA-DFKD (Shin & Choi, AAAI 2024) on the glyph benchmark, data-free: the
# student never sees a glyph image or box. A generator learns images whose
# statistics match the teacher's backbone BN layers (frozen with the
# statistics of its pretraining on glyph crops, as a COCO teacher keeps
# ImageNet's); the lenient filter keeps the generated images the teacher
# decides cleanly; the student learns from the teacher on those: L1 between
# the head outputs (the paper's loss) plus PKD on the FPN levels.
# Student, teacher and initialisation are those of every distillation row of
# the benchmark (its "inherit" fragment, the upper bound of this suite): the
# student's backbone is its glyph-crop pretraining, its FPN output convs and
# head are the teacher's. Choices and sizes: docs/data_free.md.
_base_ = ['../benchmark/_base_/distill_glyphs.py']
model = dict(
    type='DataFreeDistiller',
    distill_losses=dict(
        loss_cls=dict(student='bbox_head.retina_cls', teacher='bbox_head.retina_cls',
                      loss=dict(type='DenseL1Loss', loss_weight=1.0)),
        loss_reg=dict(student='bbox_head.retina_reg', teacher='bbox_head.retina_reg',
                      loss=dict(type='DenseL1Loss', loss_weight=1.0)),
        loss_pkd=dict(student='neck', teacher='neck', loss=dict(type='PKDLoss', loss_weight=6.0))),
    data_free=dict(
        # 64 px images upsampled to the detectors' 128, a quarter of the
        # official width (ngf 16): at 64 it would cost more than the teacher.
        generator=dict(type='ImageGenerator', nz=1000, ngf=16, img_size=64, init_size=8,
                       out_size=128),
        lenient_filter=dict(topk=100, threshold=0.5),
        # Twice the official generator steps per student step (5, not 10):
        # the run is short. A student step draws at most two batches.
        student_steps=5, max_draws=2,
        adv_weight=1.0, bn_weight=10.0, tv_weight=1.5e-5, l2_weight=6e-3, temperature=3.0))
# No images: the loader only drives the loop; batch_size images are generated
# per step, and the dataset carries the teacher's class names.
train_dataloader = dict(
    _delete_=True, batch_size=8, num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=False),
    dataset=dict(type='DataFreeDataset', metainfo=_base_.metainfo))
max_iters = 700
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
# The student's optimiser and schedule are the benchmark's; the generator's
# are the official code's (Adam 1e-3, constant).
optim_wrapper = dict(
    _delete_=True,
    constructor='DataFreeOptimWrapperConstructor',
    student=dict(type='OptimWrapper', optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
                 clip_grad=dict(max_norm=10, norm_type=2)),
    generator=dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3)))
param_scheduler = dict(
    _delete_=True,
    student=[dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
             dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=max_iters,
                  T_max=max_iters - 100, eta_min=1e-5)],
    generator=[])
default_hooks = dict(checkpoint=dict(interval=max_iters))
custom_hooks = [dict(type='GeneratedImagesHook', points=5, num_images=8)]
