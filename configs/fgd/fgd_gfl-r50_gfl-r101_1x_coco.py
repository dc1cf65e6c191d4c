# FGD, GFL R101 (multi-scale 2x, 44.7 mAP) -> R50, COCO 1x.
# FGD paper: 40.2 -> 43.5 (GFL uses the RetinaNet weights in the published configs).
_base_ = ['mmdet::gfl/gfl_r50_fpn_1x_coco.py', '../_base_/distill/fgd.py']
custom_imports = dict(imports=['mmkd_plugins'], allow_failed_imports=False)
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student='mmdet::gfl/gfl_r50_fpn_1x_coco.py',
    teacher='mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py',
    teacher_ckpt='https://download.openmmlab.com/mmdetection/v2.0/gfl/'
    'gfl_r101_fpn_mstrain_2x_coco/gfl_r101_fpn_mstrain_2x_coco_20200629_200126-dd12f847.pth',
    init_student_from_teacher=('neck', 'bbox_head'),
    distill_losses=dict(loss_fgd=dict(
        student='neck', teacher='neck', loss=dict(_base_.kd_fgd_weights, type='FGDLoss'))))
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
custom_hooks = [dict(type='TeacherEvalHook')]
