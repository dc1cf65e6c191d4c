# Plain KD with inverse-frequency loss weights: the `kd` config with each
# image's loss weighted by 1 / n_g, n_g its group's training images
# (GroupReweighted; GroupCountsHook counts them in the training data). The
# batches are split by group exactly as group DRO splits them; only the
# weights differ, and they never move.
_base_ = ['./kd_retinanet-r18-w16_retinanet-r50-w32_glyphs-imbalanced.py']
model = dict(objective=dict(type='GroupReweighted', groups=_base_.kd_groups))
custom_hooks = [dict(type='GroupCountsHook')]
