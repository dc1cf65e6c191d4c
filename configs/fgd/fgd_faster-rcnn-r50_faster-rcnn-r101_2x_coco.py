# FGD, Faster R-CNN R101 (39.8 mAP) -> R50, COCO 2x. FGD paper: 38.4 -> 42.0.
# Two-stage weights are 20x smaller than RetinaNet's (published values), and
# FGD distils P2-P5 only: the neck's fifth output is a max-pool of P5.
_base_ = ['mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py', '../_base_/distill/fgd.py']
custom_imports = dict(imports=['mmkd_plugins'], allow_failed_imports=False)
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student='mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py',
    teacher='mmdet::faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py',
    teacher_ckpt='https://download.openmmlab.com/mmdetection/v2.0/faster_rcnn/'
    'faster_rcnn_r101_fpn_2x_coco/'
    'faster_rcnn_r101_fpn_2x_coco_bbox_mAP-0.398_20200504_210455-1d2dac9c.pth',
    init_student_from_teacher=('neck', 'rpn_head', 'roi_head'),
    distill_losses=dict(loss_fgd=dict(
        student='neck', teacher='neck', levels=[0, 1, 2, 3],
        loss=dict(_base_.kd_fgd_weights, type='FGDLoss', alpha_fg=5e-5, beta_bg=2.5e-5,
                  gamma_mask=5e-5, lambda_rela=5e-7))))
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
custom_hooks = [dict(type='TeacherEvalHook')]
