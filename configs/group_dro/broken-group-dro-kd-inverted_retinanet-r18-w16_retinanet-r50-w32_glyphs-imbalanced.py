# The group suite's power check: the group-DRO config with the sign of the
# weights' signal flipped (InvertedGroupDRO, mmkd_plugins/benchmark/power_check.py),
# so that q climbs towards the groups that do *best*. Same split, step size and
# scale as its twin `group-dro-kd`, the opposite direction. If the two score
# alike on the worst group, the weights' movement is below what the suite's
# seeds can see, and no step-size or signal row can be read either.
_base_ = ['./group-dro-kd_retinanet-r18-w16_retinanet-r50-w32_glyphs-imbalanced.py']
custom_imports = dict(imports=['mmkd_plugins', 'mmkd_plugins.benchmark.power_check'],
                      allow_failed_imports=False)
model = dict(objective=dict(type='InvertedGroupDRO'))
