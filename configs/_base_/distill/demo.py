# The demo distillation: the R18-w16 student (FPN 64) learns from the R18-w32
# teacher (FPN 128) of configs/demo/; the settings the *_digits distillation
# configs share. Variable names start with kd_ so that this base merges with
# any other, and hold no `type` (see ./fgd.py). A config places them, e.g.
#   model = dict(_base_.kd_demo, _delete_=True, type='DetectionDistiller', ...)
_base_ = ['./fgd.py']
kd_demo = dict(
    student='{{fileDirname}}/../../demo/retinanet_r18-w16_digits.py',
    teacher='{{fileDirname}}/../../demo/retinanet_r18-w32_digits.py',
    # Written by `make demo` (tools/demo.py passes the path it trained; the
    # accuracy harness passes its own, --cfg-options model.teacher_ckpt=...).
    teacher_ckpt='work_dirs/demo/teacher/iter_1500.pth')
# FGD's published RetinaNet weights scaled by 0.1: these from-scratch features
# are larger than ImageNet-initialised COCO ones, and at full weight FGD's
# gradient was ~30x the detection loss's (grad norm ~100 vs ~3), so clip_grad
# starved the detection loss. Widths differ: the distiller adds 1x1 adapters.
kd_demo_fgd_weights = dict(_base_.kd_fgd_weights, loss_weight=0.1)
