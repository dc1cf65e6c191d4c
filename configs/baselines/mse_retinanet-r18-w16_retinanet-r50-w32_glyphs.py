# Plain MSE between the FPN levels (weight 1): the simplest feature mimicking.
_base_ = ['../benchmark/_base_/distill_glyphs.py']
model = dict(
    distill_losses=dict(
        loss_mse=dict(student='neck', teacher='neck',
                      loss=dict(type='FeatureMSELoss', loss_weight=1.0))))
