# What the benchmark's teacher and student share: RetinaNet with a 64-wide
# FPN on strides 8/16/32 and a 2-conv head, trained on the glyph data
# with AdamW from a pretrained backbone (the benchmark's ImageNet step,
# mmkd_plugins/benchmark/pretrain.py). As on COCO, teacher and student
# differ only in the backbone, so neck and head layouts match and
# `init_student_from_teacher` applies.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    '../../_base_/datasets/glyphs_detection.py',
    'mmdet::_base_/default_runtime.py',
]
model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    # As on COCO: pretrained stem and first stage frozen, BatchNorm frozen
    # with the pretraining statistics (batches of 8 are too small to
    # estimate them well).
    backbone=dict(out_indices=(1, 2, 3), frozen_stages=1, norm_eval=True),
    neck=dict(out_channels=64, start_level=0, add_extra_convs=False, num_outs=3),
    bbox_head=dict(
        num_classes=20, in_channels=64, feat_channels=64, stacked_convs=2,
        # Glyphs are 12-64 px tall: anchors 12-19 px on stride 8, 24-38 on
        # 16, 48-76 on 32.
        anchor_generator=dict(octave_base_scale=1.5, strides=[8, 16, 32])),
    test_cfg=dict(nms_pre=300, max_per_img=50))
max_iters = 1200
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=1e-3, weight_decay=0.05),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=max_iters,
         T_max=max_iters - 100, eta_min=1e-5),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
randomness = dict(seed=0)
