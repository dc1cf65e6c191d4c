# TA-DFKD for detectors, RetinaNet R101 (38.9 mAP) -> R50, COCO's 80 classes,
# data-free: no COCO training image is read; the student is validated on COCO
# val. Not trained here (docs/data_free.md): the sizes follow DIODE (images
# made at 160 px, upsampled to 320) and the official TA-DFKD code (10 student
# steps per generator step, its weights, Adam 1e-3 for the generator, SGD
# 0.01 with a cosine schedule for the student). The teacher's backbone BN
# layers hold ImageNet statistics (norm_eval=True), so L_BN is a prior of
# natural images, not of COCO's. As in FGD's COCO runs the student's neck and
# head start from the teacher's; its backbone is ImageNet-pretrained.
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_2x_coco.py', '../_base_/distill/fgd.py']
custom_imports = dict(imports=['mmkd_plugins'], allow_failed_imports=False)
model = dict(
    _delete_=True,
    type='DataFreeDistiller',
    student='mmdet::retinanet/retinanet_r50_fpn_2x_coco.py',
    teacher='mmdet::retinanet/retinanet_r101_fpn_2x_coco.py',
    teacher_ckpt='https://download.openmmlab.com/mmdetection/v2.0/retinanet/'
    'retinanet_r101_fpn_2x_coco/retinanet_r101_fpn_2x_coco_20200131-5560aee8.pth',
    init_student_from_teacher=('neck', 'bbox_head'),
    distill_losses=dict(
        loss_cls=dict(student='bbox_head.retina_cls', teacher='bbox_head.retina_cls',
                      loss=dict(type='DenseL1Loss')),
        loss_reg=dict(student='bbox_head.retina_reg', teacher='bbox_head.retina_reg',
                      loss=dict(type='DenseL1Loss')),
        # FGD's masks come from the teacher's pseudo-boxes on the images.
        loss_fgd=dict(student='neck', teacher='neck',
                      loss=dict(_base_.kd_fgd_weights, type='FGDLoss'))),
    data_free=dict(
        generator=dict(type='ImageGenerator', nz=1000, ngf=64, img_size=160, init_size=10,
                       out_size=320),
        lenient_filter=dict(topk=100, threshold=0.5),
        student_steps=10, max_draws=4, pseudo_score_thr=0.3))
train_dataloader = dict(
    _delete_=True, batch_size=16, num_workers=0,
    sampler=dict(type='InfiniteSampler', shuffle=False),
    dataset=dict(type='DataFreeDataset', metainfo_from='CocoDataset'))
max_iters = 90000
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=max_iters,
                 val_interval=10000)
optim_wrapper = dict(
    _delete_=True,
    constructor='DataFreeOptimWrapperConstructor',
    student=dict(type='OptimWrapper',
                 optimizer=dict(type='SGD', lr=0.01, momentum=0.9, weight_decay=1e-4),
                 clip_grad=dict(max_norm=35, norm_type=2)),
    generator=dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3)))
param_scheduler = dict(
    _delete_=True,
    student=[dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
             dict(type='CosineAnnealingLR', by_epoch=False, begin=500, end=max_iters,
                  T_max=max_iters - 500, eta_min=0)],
    generator=[])
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=10000))
log_processor = dict(by_epoch=False)
custom_hooks = [dict(type='TeacherEvalHook'), dict(type='GeneratedImagesHook', points=10)]
