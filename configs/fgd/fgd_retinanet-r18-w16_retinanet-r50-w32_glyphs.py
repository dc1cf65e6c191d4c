# FGD on the glyph benchmark with FGD's published RetinaNet weights
# (../_base_/distill/fgd.py), on all three FPN levels; neck widths match, so
# no adapter. The student's FPN output convs and head start from the
# teacher's (../benchmark/_base_/distill_glyphs.py), as in FGD's COCO runs.
_base_ = ['../benchmark/_base_/distill_glyphs.py', '../_base_/distill/fgd.py']
model = dict(distill_losses=dict(loss_fgd=dict(
    student='neck', teacher='neck', loss=dict(_base_.kd_fgd_weights, type='FGDLoss'))))
