# UET around a feature loss (Yi et al. 2024, docs/uet.md): Monte Carlo dropout
# on the teacher's backbone outputs, 8 passes of its neck batched, at half
# resolution (scale=0.5 keeps the passes cheap; configs/uet/README.md gives
# the cost of both); the host loss transfers less where the teacher is
# unsure. Variable names start with kd_ so that this base merges with any
# other, and hold no `type` (see ./fgd.py). A config that inherits its FGD
# twin and this base wraps the twin's loss, unchanged, as the host:
#   model = dict(distill_losses=dict(loss_fgd=dict(
#       mc_dropout=_base_.kd_uet_mc_dropout,
#       loss=dict(_base_.kd_uet, _delete_=True, type='UncertaintyAwareLoss',
#                 host=_base_.model.distill_losses.loss_fgd.loss))))
kd_uet_mc_dropout = dict(p=0.1, passes=8, placement='backbone', reduce='spatial', scale=0.5)
kd_uet = dict(mode='weight', strength=1.0)
