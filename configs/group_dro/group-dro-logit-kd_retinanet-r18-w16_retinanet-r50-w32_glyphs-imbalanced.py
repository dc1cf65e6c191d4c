# Group-DRO logit KD: the objective of
# ./group-dro-kd_retinanet-r18-w16_retinanet-r50-w32_glyphs-imbalanced.py over
# the logit-KD config, for the case where logit KD is the stronger plain KD.
_base_ = ['./logit-kd_retinanet-r18-w16_retinanet-r50-w32_glyphs-imbalanced.py']
model = dict(objective=dict(type='GroupDRO', groups=_base_.kd_groups, step_size=0.01,
                            signal='detection', adjustment=0.0))
custom_hooks = [dict(type='GroupCountsHook')]
