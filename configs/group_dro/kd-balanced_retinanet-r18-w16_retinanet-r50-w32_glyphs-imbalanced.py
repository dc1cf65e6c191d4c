# Plain KD with group-balanced batches: the `kd` config with every
# background style drawn equally often (GroupBalancedSampler, power=1): the
# 150 photo images make a quarter of the draws instead of 5 %.
_base_ = ['./kd_retinanet-r18-w16_retinanet-r50-w32_glyphs-imbalanced.py']
train_dataloader = dict(sampler=dict(_delete_=True, type='GroupBalancedSampler', power=1.0))
