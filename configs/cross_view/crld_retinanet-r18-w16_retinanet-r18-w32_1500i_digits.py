# Cross-view consistency distillation (CRLD) on the demo data: weak and strong
# views of every image (./_base_/two_view_pipelines.py), within-view and
# cross-view binary KL on the RetinaNet class maps with the teacher's
# confidence masks (cv_crld: the paper's weights and thresholds, temperature 1
# for sigmoid heads, docs/cross_view.md says why).
_base_ = ['../demo/retinanet_r18-w16_digits.py', './_base_/two_view_pipelines.py',
          '../_base_/distill/demo.py']
custom_imports = dict(imports=['mmkd_plugins'], allow_failed_imports=False)
model = dict(_base_.kd_demo, _delete_=True, type='CrossViewDistiller',
             cross_view=dict(loss=dict(_base_.cv_crld, type='CrossViewLoss')),
             distill_losses=dict())
train_dataloader = dict(dataset=dict(pipeline={{_base_.cv_digits_train_pipeline}}))
custom_hooks = [dict(type='TeacherEvalHook')]
