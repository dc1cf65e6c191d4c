# UET on the glyph benchmark as shipped: the FGD row (its twin in ../fgd/)
# with the FGD loss wrapped by UncertaintyAwareLoss, in the default variant
# of ../_base_/distill/uet.py (kd_uet_default). The benchmark rows name their
# variant: uet-add-fgd_*, uet-weight-fgd_*, uet-head-fgd_*.
_base_ = ['../fgd/fgd_retinanet-r18-w16_retinanet-r50-w32_glyphs.py', '../_base_/distill/uet.py']
model = dict(distill_losses=dict(loss_fgd=dict(
    mc_dropout=_base_.kd_uet_mc_dropout,
    loss=dict(_base_.kd_uet, _delete_=True, type='UncertaintyAwareLoss',
              host=_base_.model.distill_losses.loss_fgd.loss))))
