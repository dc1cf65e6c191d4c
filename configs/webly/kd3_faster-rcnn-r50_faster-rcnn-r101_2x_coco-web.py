# KD^3, Faster R-CNN R101 (39.8 mAP on COCO) -> R50, from an unlabelled web
# pool (docs/webly.md); as the RetinaNet config, with a two-stage detector's
# heads: the student's neck ends in the projector and feeds the teacher's
# RPN and RoI heads, both frozen; dense KD is on the RPN's objectness and box
# maps (one class), and the disagreement weights compare the objectness maps.
# Selection scores the pool with the full detectors (RoI head's classes).
_base_ = ['mmdet::faster_rcnn/faster-rcnn_r50_fpn_2x_coco.py', '../_base_/distill/kd3.py']
custom_imports = dict(imports=['mmkd_plugins'], allow_failed_imports=False)
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student=dict(_base_.model, neck=[_base_.model.neck, *_base_.kd_kd3_projector_256x5]),
    teacher='mmdet::faster_rcnn/faster-rcnn_r101_fpn_2x_coco.py',
    teacher_ckpt='https://download.openmmlab.com/mmdetection/v2.0/faster_rcnn/'
    'faster_rcnn_r101_fpn_2x_coco/'
    'faster_rcnn_r101_fpn_2x_coco_bbox_mAP-0.398_20200504_210455-1d2dac9c.pth',
    init_student_from_teacher=[dict(student='neck.0', teacher='neck'),
                               dict(student='rpn_head', frozen=True),
                               dict(student='roi_head', frozen=True)],
    detection_loss=False,
    distill_losses=dict(
        loss_kd=dict(student='rpn_head.rpn_cls', teacher='rpn_head.rpn_cls',
                     loss=dict(type='DenseKDLoss', temperature=1.0, loss_weight=1.0)),
        loss_kd_box=dict(student='rpn_head.rpn_reg', teacher='rpn_head.rpn_reg',
                         loss=dict(type='FeatureMSELoss', loss_weight=1.0)),
        loss_fa=dict(student='neck', teacher='neck',
                     loss=dict(type='FeatureMSELoss', loss_weight=1.0),
                     image_weights=dict(type='DisagreementWeights',
                                        student='rpn_head.rpn_cls'))),
    terms=[dict(type='MixDistributionTerm', module='neck', loss_weight=1e-3)])
train_dataloader = dict(
    sampler=dict(_delete_=True, type='WebSelectionSampler'),
    dataset=dict(_base_.kd_kd3_web_pool, type='WebPoolDataset',
                 pipeline=_base_.kd_kd3_web_pipeline))
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=175920, val_interval=7330)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=175920,
         milestones=[117280, 161260], gamma=0.1),
]
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=7330))
log_processor = dict(by_epoch=False)
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
custom_hooks = [dict(type='TeacherEvalHook'),
                dict(type='WebSelectionHook', ramp_epochs=16, stop_epoch=12)]
