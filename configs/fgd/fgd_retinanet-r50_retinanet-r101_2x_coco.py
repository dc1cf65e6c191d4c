# FGD, RetinaNet R101 (38.9 mAP) -> R50, COCO 2x. FGD paper: R50 37.4 -> 40.7.
# Hyper-parameters are the published RetinaNet ones; as in the paper's runs the
# student's neck and head start from the teacher's (identical layouts).
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_2x_coco.py', '../_base_/distill/fgd.py']
custom_imports = dict(imports=['mmkd_plugins'], allow_failed_imports=False)
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student='mmdet::retinanet/retinanet_r50_fpn_2x_coco.py',
    teacher='mmdet::retinanet/retinanet_r101_fpn_2x_coco.py',
    teacher_ckpt='https://download.openmmlab.com/mmdetection/v2.0/retinanet/'
    'retinanet_r101_fpn_2x_coco/retinanet_r101_fpn_2x_coco_20200131-5560aee8.pth',
    init_student_from_teacher=('neck', 'bbox_head'),
    distill_losses=dict(loss_fgd=dict(
        student='neck', teacher='neck', loss=dict(_base_.kd_fgd_weights, type='FGDLoss'))))
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
custom_hooks = [dict(type='TeacherEvalHook')]
