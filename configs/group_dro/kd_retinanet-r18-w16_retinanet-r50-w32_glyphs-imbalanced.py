# Plain KD on the group-imbalanced glyph data, the `kd` row of the group
# suite: the benchmark's FGD row (../fgd/fgd_retinanet-r18-w16_retinanet-r50-w32_glyphs.py,
# FGD's published RetinaNet weights; tests/test_configs.py checks that the
# model is the same) on the data of ./retinanet_r18-w16_glyphs-imbalanced.py.
# The twin of every group-robust row.
_base_ = ['./_base_/distill_glyphs-imbalanced.py', '../_base_/distill/fgd.py']
model = dict(distill_losses=dict(loss_fgd=dict(
    student='neck', teacher='neck', loss=dict(_base_.kd_fgd_weights, type='FGDLoss'))))
