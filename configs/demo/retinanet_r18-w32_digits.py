# Teacher for the demo data: RetinaNet, ResNet-18 at half width (32 base
# channels), FPN 128, three levels (strides 8/16/32) for 128x128 images with
# 12-48 px digits. Half width keeps `make demo` inside ~20 min on 2 cores.
# A plain MMDetection config: it trains with MMDetection's own tools/train.py.
_base_ = [
    'mmdet::_base_/models/retinanet_r50_fpn.py',
    '../_base_/datasets/digits_detection.py',
    'mmdet::_base_/default_runtime.py',
]
model = dict(
    data_preprocessor=dict(pad_size_divisor=32),
    backbone=dict(depth=18, base_channels=32, out_indices=(1, 2, 3),
                  frozen_stages=-1, norm_eval=False, init_cfg=None),
    neck=dict(in_channels=[64, 128, 256], out_channels=128, start_level=0,
              add_extra_convs=False, num_outs=3),
    bbox_head=dict(
        num_classes=10, in_channels=128, feat_channels=128, stacked_convs=2,
        anchor_generator=dict(octave_base_scale=2, strides=[8, 16, 32])),
    test_cfg=dict(nms_pre=300, max_per_img=30))
# Iteration schedule for the demo data on CPU: AdamW from scratch (no
# pretrained weights can be downloaded), linear warm-up, cosine decay.
max_iters = 1500
train_cfg = dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=2e-3, weight_decay=0.05),
    clip_grad=dict(max_norm=10, norm_type=2))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=max_iters,
         T_max=max_iters - 100, eta_min=2e-5),
]
default_hooks = dict(
    logger=dict(type='LoggerHook', interval=50),
    checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=max_iters, max_keep_ckpts=1))
log_processor = dict(by_epoch=False)
# A fixed seed makes the demo repeatable; the accuracy harness sets its own.
randomness = dict(seed=0)
