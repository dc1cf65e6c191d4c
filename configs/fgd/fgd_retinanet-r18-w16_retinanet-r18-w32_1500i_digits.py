# FGD on the demo data: the R18-w16 student learns from the R18-w32 teacher's FPN.
# Student FPN is 64 wide, teacher 128: the distiller adds 1x1 adapters.
_base_ = ['../demo/retinanet_r18-w16_digits.py']
custom_imports = dict(imports=['mmkd_plugins'], allow_failed_imports=False)
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student='{{fileDirname}}/../demo/retinanet_r18-w16_digits.py',
    teacher='{{fileDirname}}/../demo/retinanet_r18-w32_digits.py',
    # Written by `make demo` (tools/demo.py passes the path it trained).
    teacher_ckpt='work_dirs/demo/teacher/iter_1500.pth',
    distill_losses=dict(
        loss_fgd=dict(
            student='neck', teacher='neck',
            # Published RetinaNet weights, scaled by 0.1: these from-scratch
            # features are larger than ImageNet-initialised COCO ones, and at
            # full weight FGD's gradient was ~30x the detection loss's (grad
            # norm ~100 vs ~3), so clip_grad starved the detection loss.
            loss=dict(type='FGDLoss', temperature=0.5, alpha_fg=1e-3,
                      beta_bg=5e-4, gamma_mask=5e-4, lambda_rela=5e-6,
                      loss_weight=0.1))))
custom_hooks = [dict(type='TeacherEvalHook')]
