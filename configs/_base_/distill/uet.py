# UET around a feature loss (Yi et al. 2024, docs/uet.md). Each variant is an
# `mc_dropout` spec (how the teacher is sampled) and the UncertaintyAwareLoss
# settings (how the MC variance is used). All sample through non-linear
# teacher computation: MMDetection's FPN is linear, so dropout on its inputs
# would have a closed-form variance (docs/uet.md, section 1).
#   add:    the paper's form. Dropout on the input of the teacher's last
#           backbone stage, that stage and the neck run 8 times (2 per
#           batched call); the target is F + U, U the per-element MC
#           standard deviation (reduce='both').
#   weight: the same passes; the host's terms are weighted by
#           exp(-minmax(U)) per location (U the RMS MC std over channels):
#           the student copies less where the teacher is unsure.
#   head:   weight mode, with the dropout on the neck outputs and the
#           teacher's dense head repeated (U from its class probabilities).
# Variable names start with kd_ so that this base merges with any other, and
# hold no `type` (see ./fgd.py). A config that inherits its host twin and this
# base wraps the twin's loss, unchanged, as the host:
#   model = dict(distill_losses=dict(loss_fgd=dict(
#       mc_dropout=_base_.kd_uet_mc_dropout,
#       loss=dict(_base_.kd_uet, _delete_=True, type='UncertaintyAwareLoss',
#                 host=_base_.model.distill_losses.loss_fgd.loss))))
# (a variant by name: _base_.kd_uet_variants.weight.mc_dropout / .loss).
kd_uet_variants = dict(
    add=dict(mc_dropout=dict(p=0.1, passes=8, placement='stage', reduce='both', scale=1.0,
                             chunk=2),
             loss=dict(mode='add', strength=1.0)),
    weight=dict(mc_dropout=dict(p=0.1, passes=8, placement='stage', reduce='spatial',
                                scale=1.0, chunk=2),
                loss=dict(mode='weight', strength=1.0)),
    head=dict(mc_dropout=dict(p=0.1, passes=8, placement='head', reduce='spatial', scale=1.0,
                              chunk=2),
              loss=dict(mode='weight', strength=1.0)),
)
# The shipped default, the one switch: the variant every configs/uet/uet-fgd_*
# config (and crld-uet-fgd) uses. Set it to what the glyph benchmark's rows
# uet-add / uet-weight / uet-head measure best (docs/uet.md, section 6).
kd_uet_default = 'add'
kd_uet_mc_dropout = kd_uet_variants[kd_uet_default]['mc_dropout']
kd_uet = kd_uet_variants[kd_uet_default]['loss']
