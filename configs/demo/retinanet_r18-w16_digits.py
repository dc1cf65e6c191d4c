# Student for the demo data: the teacher's layout at half its width
# (ResNet-18 with 16 base channels, FPN 64, head 64).
_base_ = ['./retinanet_r18-w32_digits.py']
model = dict(
    backbone=dict(base_channels=16),
    neck=dict(in_channels=[32, 64, 128], out_channels=64),
    bbox_head=dict(in_channels=64, feat_channels=64))
