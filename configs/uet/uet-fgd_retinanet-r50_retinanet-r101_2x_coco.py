# UET on top of FGD: the FGD twin (../fgd/fgd_retinanet-r50_retinanet-r101_2x_coco.py) with its
# loss wrapped by UncertaintyAwareLoss, in the default variant of
# ../_base_/distill/uet.py (kd_uet_default): Monte Carlo dropout on the input
# of the teacher's last backbone stage, that stage and the FPN run 8 times,
# 2 passes per batched call. See docs/uet.md.
_base_ = ['../fgd/fgd_retinanet-r50_retinanet-r101_2x_coco.py', '../_base_/distill/uet.py']
model = dict(distill_losses=dict(loss_fgd=dict(
    mc_dropout=_base_.kd_uet_mc_dropout,
    loss=dict(_base_.kd_uet, _delete_=True, type='UncertaintyAwareLoss',
              host=_base_.model.distill_losses.loss_fgd.loss))))
