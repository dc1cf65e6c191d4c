# Group-DRO KD on the group-imbalanced glyph data: the `kd` config (FGD)
# under the group-DRO objective, one weight per background style moved by
# exponentiated gradient on each group's detection loss
# (mmkd_plugins/distillers/group_dro_distiller.py). GroupCountsHook counts
# the training images per group, for the adjustment C / sqrt(n_g) (off here;
# model.objective.adjustment=C turns it on).
_base_ = ['./kd_retinanet-r18-w16_retinanet-r50-w32_glyphs-imbalanced.py']
model = dict(objective=dict(type='GroupDRO', groups=_base_.kd_groups, step_size=0.01,
                            signal='detection', adjustment=0.0))
custom_hooks = [dict(type='GroupCountsHook')]
