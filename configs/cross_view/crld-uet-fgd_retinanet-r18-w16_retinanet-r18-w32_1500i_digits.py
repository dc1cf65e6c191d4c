# Cross-view distillation with FGD + UET: the FGD loss of the cross-view + FGD
# config wrapped by UncertaintyAwareLoss, exactly as ../uet/ wraps the FGD demo.
_base_ = ['./crld-fgd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py',
          '../_base_/distill/uet.py']
model = dict(distill_losses=dict(loss_fgd=dict(
    mc_dropout=_base_.kd_uet_mc_dropout,
    loss=dict(_base_.kd_uet, _delete_=True, type='UncertaintyAwareLoss',
              host=_base_.model.distill_losses.loss_fgd.loss))))
