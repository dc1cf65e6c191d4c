# Single-view logit distillation plus FGD on the demo data: the single-view
# twin of crld-fgd_..., so that the two differ by the second view and the
# confidence masks only. The FGD loss is the FGD demo's (../_base_/distill/demo.py).
_base_ = ['./kd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py']
model = dict(distill_losses=dict(loss_fgd=dict(
    student='neck', teacher='neck', loss=dict(_base_.kd_demo_fgd_weights, type='FGDLoss'))))
