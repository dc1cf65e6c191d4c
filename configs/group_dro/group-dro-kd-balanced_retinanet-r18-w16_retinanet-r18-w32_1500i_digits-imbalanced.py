# Group-DRO FGD distillation with group-balanced batches: the group-DRO twin
# with every background style drawn equally often (GroupBalancedSampler,
# power=1), as group DRO is run in Sagawa et al.'s experiments. On this data
# the 50 photo images then make a quarter of the draws instead of 5 %, and
# every group is in ~90 % of the batches of 8 instead of photo's ~34 %.
_base_ = ['./group-dro-kd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits-imbalanced.py']
train_dataloader = dict(sampler=dict(_delete_=True, type='GroupBalancedSampler', power=1.0))
