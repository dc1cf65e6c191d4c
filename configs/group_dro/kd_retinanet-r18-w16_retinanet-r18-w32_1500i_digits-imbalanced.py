# Plain FGD distillation on the group-imbalanced digits: the model, losses and
# hooks of ../fgd/fgd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py
# (tests/test_configs.py checks that they are identical), the data of
# ./retinanet_r18-w16_1500i_digits-imbalanced.py.
_base_ = ['./retinanet_r18-w16_1500i_digits-imbalanced.py']
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student='{{fileDirname}}/../demo/retinanet_r18-w16_digits.py',
    teacher='{{fileDirname}}/../demo/retinanet_r18-w32_digits.py',
    # The demo teacher, trained on the *balanced* demo data by `make demo`;
    # the accuracy harness passes its own (--cfg-options model.teacher_ckpt=...).
    teacher_ckpt='work_dirs/demo/teacher/iter_1500.pth',
    distill_losses=dict(
        loss_fgd=dict(
            student='neck', teacher='neck',
            loss=dict(type='FGDLoss', temperature=0.5, alpha_fg=1e-3,
                      beta_bg=5e-4, gamma_mask=5e-4, lambda_rela=5e-6,
                      loss_weight=0.1))))
custom_hooks = [dict(type='TeacherEvalHook')]
