# TA-DFKD for detectors, Faster R-CNN R101 (39.8 mAP) -> R50, COCO, data-free;
# everything but the model as the RetinaNet config. The dense head compared
# and filtered on is the RPN: its sigmoid objectness maps (the filter's
# scores, the adversarial JS) and its boxes (L1); the pseudo-boxes of FGD's
# masks are the RPN's proposals scoring at least 0.3. The RoI head starts
# from the teacher's and follows the neck through FGD. Not trained here.
_base_ = ['./ta-dfkd_retinanet-r50_retinanet-r101_90ki_coco.py']
model = dict(
    student='mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py',
    teacher='mmdet::faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py',
    teacher_ckpt='https://download.openmmlab.com/mmdetection/v2.0/faster_rcnn/'
    'faster_rcnn_r101_fpn_2x_coco/'
    'faster_rcnn_r101_fpn_2x_coco_bbox_mAP-0.398_20200504_210455-1d2dac9c.pth',
    init_student_from_teacher=('neck', 'rpn_head', 'roi_head'),
    distill_losses=dict(
        loss_cls=dict(student='rpn_head.rpn_cls', teacher='rpn_head.rpn_cls'),
        loss_reg=dict(student='rpn_head.rpn_reg', teacher='rpn_head.rpn_reg'),
        # FGD's two-stage weights, on P2-P5 (the fifth level is a max-pool of P5).
        loss_fgd=dict(levels=[0, 1, 2, 3],
                      loss=dict(alpha_fg=5e-5, beta_bg=2.5e-5, gamma_mask=5e-5,
                                lambda_rela=5e-7))))
