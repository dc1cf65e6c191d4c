# Benchmark teacher: RetinaNet with a ResNet-50-style backbone (bottleneck
# blocks) at half width (32 base channels, stage outputs 256/512/1024),
# pretrained on glyph crops. Trained three times as long as the students,
# as a teacher is the best model one has.
_base_ = ['./_base_/retinanet_glyphs.py']
model = dict(
    backbone=dict(
        depth=50, base_channels=32,
        init_cfg=dict(type='Pretrained',
                      checkpoint='work_dirs/pretrain/glyphs_resnet50-w32.pth')),
    neck=dict(in_channels=[256, 512, 1024]))
max_iters = 3600
train_cfg = dict(max_iters=max_iters, val_interval=max_iters)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=100),
    dict(type='CosineAnnealingLR', by_epoch=False, begin=100, end=max_iters,
         T_max=max_iters - 100, eta_min=1e-5),
]
default_hooks = dict(checkpoint=dict(interval=max_iters))
