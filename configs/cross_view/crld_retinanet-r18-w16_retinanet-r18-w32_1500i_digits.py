# Cross-view consistency distillation (CRLD) on the demo data: weak and strong
# views of every image (../_base_/two_view_pipelines.py), within-view and
# cross-view binary KL on the RetinaNet class maps with the teacher's
# confidence masks. Weights and thresholds are the paper's; the temperature is
# 1 for sigmoid heads (docs/cross_view.md says why).
_base_ = ['../demo/retinanet_r18-w16_digits.py', './_base_/two_view_pipelines.py']
custom_imports = dict(imports=['mmkd_plugins'], allow_failed_imports=False)
model = dict(
    _delete_=True,
    type='CrossViewDistiller',
    student='{{fileDirname}}/../demo/retinanet_r18-w16_digits.py',
    teacher='{{fileDirname}}/../demo/retinanet_r18-w32_digits.py',
    # Written by `make demo` (tools/demo.py passes the path it trained).
    teacher_ckpt='work_dirs/demo/teacher/iter_1500.pth',
    cross_view=dict(
        loss=dict(type='CrossViewLoss', within_weight=2.0, cross_weight=0.5,
                  temperature=1.0, tau_weak=0.9, tau_strong=0.2)),
    distill_losses=dict())
train_dataloader = dict(dataset=dict(pipeline={{_base_.cv_digits_train_pipeline}}))
custom_hooks = [dict(type='TeacherEvalHook')]
