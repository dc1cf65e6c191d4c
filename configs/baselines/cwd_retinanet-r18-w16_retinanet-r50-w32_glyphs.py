# CWD (Shu et al., ICCV 2021) on the FPN levels, published RetinaNet setting
# (temperature 1, weight 5).
_base_ = ['../benchmark/_base_/distill_glyphs.py']
model = dict(
    distill_losses=dict(
        loss_cwd=dict(student='neck', teacher='neck',
                      loss=dict(type='CWDLoss', temperature=1.0, loss_weight=5.0))))
