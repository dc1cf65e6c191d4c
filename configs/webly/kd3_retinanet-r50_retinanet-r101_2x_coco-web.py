# KD^3 (Tang et al., ICCV 2023), RetinaNet R101 (38.9 mAP on COCO) -> R50,
# learnt from an unlabelled web pool instead of COCO train2017 (docs/webly.md;
# the pool is configs/_base_/distill/kd3.py's kd_kd3_web_pool: point it at
# your images). Not trained here. The student: R50 + FPN (from the teacher's
# FPN) + KD^3's projector + the teacher's head, frozen (head alignment).
# Losses: dense KD of the class and box maps, feature alignment of the
# projected FPN weighted per image by the heads' disagreement, and
# MixDistribution's contrastive term at KD^3's weight; the pool is re-selected
# every epoch (one pass of the batches over it). An iteration-based 2x
# schedule, since the selection's sampler is infinite: 24 x 7330 iterations
# of 16 images; E_a = 16 and E_stop = 12 epochs keep KD^3's 160/120 of 240.
_base_ = ['mmdet::retinanet/retinanet_r50_fpn_2x_coco.py', '../_base_/distill/kd3.py']
custom_imports = dict(imports=['mmkd_plugins'], allow_failed_imports=False)
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student=dict(_base_.model, neck=[_base_.model.neck, *_base_.kd_kd3_projector_256x5]),
    teacher='mmdet::retinanet/retinanet_r101_fpn_2x_coco.py',
    teacher_ckpt='https://download.openmmlab.com/mmdetection/v2.0/retinanet/'
    'retinanet_r101_fpn_2x_coco/retinanet_r101_fpn_2x_coco_20200131-5560aee8.pth',
    init_student_from_teacher=[dict(student='neck.0', teacher='neck'),
                               dict(student='bbox_head', frozen=True)],
    detection_loss=False,
    distill_losses=dict(
        loss_kd=dict(student='bbox_head.retina_cls', teacher='bbox_head.retina_cls',
                     loss=dict(type='DenseKDLoss', temperature=1.0, loss_weight=1.0)),
        loss_kd_box=dict(student='bbox_head.retina_reg', teacher='bbox_head.retina_reg',
                         loss=dict(type='FeatureMSELoss', loss_weight=1.0)),
        loss_fa=dict(student='neck', teacher='neck',
                     loss=dict(type='FeatureMSELoss', loss_weight=1.0),
                     image_weights=dict(type='DisagreementWeights',
                                        student='bbox_head.retina_cls'))),
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
