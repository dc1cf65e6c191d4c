# Group-DRO KD with group-balanced batches, as Sagawa et al. run group DRO
# (their code's --reweight_groups --robust): the group-DRO config with the
# sampler of ./kd-balanced_retinanet-r18-w16_retinanet-r50-w32_glyphs-imbalanced.py.
_base_ = ['./group-dro-kd_retinanet-r18-w16_retinanet-r50-w32_glyphs-imbalanced.py']
train_dataloader = dict(sampler=dict(_delete_=True, type='GroupBalancedSampler', power=1.0))
