# UET 'head' variant (../_base_/distill/uet.py) on the glyph benchmark, row
# `uet-head` (twin `fgd`): the FGD row's config (../fgd/) with its loss
# wrapped by UncertaintyAwareLoss; weight mode with the MC dropout on the neck
# outputs and the teacher's dense head repeated (U from its class
# probabilities).
_base_ = ['../fgd/fgd_retinanet-r18-w16_retinanet-r50-w32_glyphs.py', '../_base_/distill/uet.py']
model = dict(distill_losses=dict(loss_fgd=dict(
    mc_dropout=_base_.kd_uet_variants.head.mc_dropout,
    loss=dict(_base_.kd_uet_variants.head.loss, _delete_=True, type='UncertaintyAwareLoss',
              host=_base_.model.distill_losses.loss_fgd.loss))))
