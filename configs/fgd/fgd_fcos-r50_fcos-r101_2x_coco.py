# FGD, FCOS R101-caffe (multi-scale 2x) -> R50-caffe with the
# center-normbbox-centeronreg-giou tricks, COCO. FGD paper: 38.5 -> 42.7
# (FCOS uses temperature 0.8 and larger weights in the published configs).
# Both are caffe-style models, so the student's preprocessor suits the teacher.
_base_ = ['mmdet::fcos/fcos_r50-caffe_fpn_gn-head-center-normbbox-centeronreg-giou_1x_coco.py',
          '../_base_/distill/fgd.py']
custom_imports = dict(imports=['mmkd_plugins'], allow_failed_imports=False)
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student='mmdet::fcos/fcos_r50-caffe_fpn_gn-head-center-normbbox-centeronreg-giou_1x_coco.py',
    teacher='mmdet::fcos/fcos_r101-caffe_fpn_gn-head_ms-640-800-2x_coco.py',
    teacher_ckpt='https://download.openmmlab.com/mmdetection/v2.0/fcos/'
    'fcos_r101_caffe_fpn_gn-head_mstrain_640-800_2x_coco/'
    'fcos_r101_caffe_fpn_gn-head_mstrain_640-800_2x_coco-511424d6.pth',
    distill_losses=dict(loss_fgd=dict(
        student='neck', teacher='neck',
        loss=dict(_base_.kd_fgd_weights, type='FGDLoss', temperature=0.8, alpha_fg=1.6e-3,
                  beta_bg=8e-4, gamma_mask=8e-4, lambda_rela=8e-6))))
# FGD trained its FCOS students for 2x (24 epochs).
train_cfg = dict(max_epochs=24)
param_scheduler = [
    dict(type='ConstantLR', factor=1.0 / 3, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=24, by_epoch=True, milestones=[16, 22], gamma=0.1)
]
# The base FCOS config sets clip_grad=None, hence _delete_.
optim_wrapper = dict(clip_grad=dict(_delete_=True, max_norm=35, norm_type=2))
custom_hooks = [dict(type='TeacherEvalHook')]
