# UET 'add' variant (../_base_/distill/uet.py) on the glyph benchmark, row
# `uet-add` (twin `fgd`): the FGD row's config (../fgd/) with its loss wrapped
# by UncertaintyAwareLoss; the paper's form: FGD towards F + U, U the per-
# element MC standard deviation of the teacher's neck levels with dropout on
# the input of its last backbone stage.
_base_ = ['../fgd/fgd_retinanet-r18-w16_retinanet-r50-w32_glyphs.py', '../_base_/distill/uet.py']
model = dict(distill_losses=dict(loss_fgd=dict(
    mc_dropout=_base_.kd_uet_variants.add.mc_dropout,
    loss=dict(_base_.kd_uet_variants.add.loss, _delete_=True, type='UncertaintyAwareLoss',
              host=_base_.model.distill_losses.loss_fgd.loss))))
