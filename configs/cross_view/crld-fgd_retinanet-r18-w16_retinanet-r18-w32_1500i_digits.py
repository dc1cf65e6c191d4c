# Cross-view distillation and FGD in one config: the FGD demo's feature loss
# (../_base_/distill/demo.py, as in ../fgd/) runs on both views beside the
# cross-view logit terms.
_base_ = ['./crld_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py']
model = dict(distill_losses=dict(loss_fgd=dict(
    student='neck', teacher='neck', loss=dict(_base_.kd_demo_fgd_weights, type='FGDLoss'))))
