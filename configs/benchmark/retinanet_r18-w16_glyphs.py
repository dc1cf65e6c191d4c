# Benchmark student: RetinaNet with a ResNet-18-style backbone (basic
# blocks) at quarter width (16 base channels, stage outputs 32/64/128),
# pretrained on glyph crops; neck and head as the teacher's.
_base_ = ['./_base_/retinanet_glyphs.py']
model = dict(
    backbone=dict(
        depth=18, base_channels=16,
        init_cfg=dict(type='Pretrained',
                      checkpoint='work_dirs/pretrain/glyphs_resnet18-w16.pth')),
    neck=dict(in_channels=[32, 64, 128]))
