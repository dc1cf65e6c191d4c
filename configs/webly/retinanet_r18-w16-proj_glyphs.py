# KD^3's student for the glyph benchmark (head alignment, docs/webly.md):
# the benchmark student with a projector at the end of its neck and the
# teacher's head layout. The projector is KD^3's 1x1-3x3-1x1 bottleneck
# (half width inside, BatchNorm after every conv, ReLU after the first two)
# per FPN level, as three MMDetection ChannelMappers: the last ReLU of KD^3's
# projector is left out because FPN features, unlike a ResNet's pooled
# features, are signed. A plain MMDetection detector: the export needs no
# mmkd_plugins.
_base_ = ['../benchmark/retinanet_r18-w16_glyphs.py']
_bn, _relu = dict(type='BN'), dict(type='ReLU')
model = dict(
    neck=[
        {{_base_.model.neck}},
        dict(type='ChannelMapper', in_channels=[64] * 3, out_channels=32, kernel_size=1,
             norm_cfg=_bn, act_cfg=_relu),
        dict(type='ChannelMapper', in_channels=[32] * 3, out_channels=32, kernel_size=3,
             norm_cfg=_bn, act_cfg=_relu),
        dict(type='ChannelMapper', in_channels=[32] * 3, out_channels=64, kernel_size=1,
             norm_cfg=_bn, act_cfg=None),
    ])
