# UET 'add' variant (../_base_/distill/uet.py, the paper's form) on a second
# host, row `uet-add-pkd` (twin `pkd`): the PKD row's config
# (../baselines/) with its loss wrapped by UncertaintyAwareLoss, so PKD
# compares the student with F + U instead of F.
_base_ = ['../baselines/pkd_retinanet-r18-w16_retinanet-r50-w32_glyphs.py',
          '../_base_/distill/uet.py']
model = dict(distill_losses=dict(loss_pkd=dict(
    mc_dropout=_base_.kd_uet_variants.add.mc_dropout,
    loss=dict(_base_.kd_uet_variants.add.loss, _delete_=True, type='UncertaintyAwareLoss',
              host=_base_.model.distill_losses.loss_pkd.loss))))
