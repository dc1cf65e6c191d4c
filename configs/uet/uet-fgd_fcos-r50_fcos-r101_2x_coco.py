# UET on top of FGD: the FGD twin (../fgd/fgd_fcos-r50_fcos-r101_2x_coco.py) with its loss
# wrapped by UncertaintyAwareLoss and Monte Carlo dropout on the teacher's
# backbone outputs (../_base_/distill/uet.py; at scale 0.5, P3 at 50x84 for
# 800x1333 inputs). See docs/uet.md.
_base_ = ['../fgd/fgd_fcos-r50_fcos-r101_2x_coco.py', '../_base_/distill/uet.py']
model = dict(distill_losses=dict(loss_fgd=dict(
    mc_dropout=_base_.kd_uet_mc_dropout,
    loss=dict(_base_.kd_uet, _delete_=True, type='UncertaintyAwareLoss',
              host=_base_.model.distill_losses.loss_fgd.loss))))
