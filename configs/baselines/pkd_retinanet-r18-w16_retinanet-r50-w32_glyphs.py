# PKD (Cao et al., NeurIPS 2022) on the FPN levels, published RetinaNet weight 6.
_base_ = ['../benchmark/_base_/distill_glyphs.py']
model = dict(
    distill_losses=dict(
        loss_pkd=dict(student='neck', teacher='neck', loss=dict(type='PKDLoss', loss_weight=6.0))))
