# TA-DFKD for detectors, GFL R101 (multi-scale 2x, 44.7 mAP) -> R50, COCO,
# data-free; everything but the model as the RetinaNet config. GFL's box
# branch predicts a distribution over reg_max + 1 bins per side: the
# adversarial term adds the JS of those distributions to the class maps',
# and L1 distils their logits. Not trained here.
_base_ = ['./ta-dfkd_retinanet-r50_retinanet-r101_90ki_coco.py']
model = dict(
    student='mmdet::gfl/gfl_r50_fpn_1x_coco.py',
    teacher='mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py',
    teacher_ckpt='https://download.openmmlab.com/mmdetection/v2.0/gfl/'
    'gfl_r101_fpn_mstrain_2x_coco/gfl_r101_fpn_mstrain_2x_coco_20200629_200126-dd12f847.pth',
    init_student_from_teacher=('neck', 'bbox_head'),
    # L1 on GFL's class and box-distribution logits; FGD as the RetinaNet config.
    distill_losses=dict(
        loss_cls=dict(student='bbox_head.gfl_cls', teacher='bbox_head.gfl_cls'),
        loss_reg=dict(student='bbox_head.gfl_reg', teacher='bbox_head.gfl_reg')))
