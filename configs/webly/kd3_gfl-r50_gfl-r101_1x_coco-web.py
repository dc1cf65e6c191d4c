# KD^3, GFL R101 (multi-scale 2x, 44.7 mAP) -> R50, 1x, from an unlabelled
# web pool (docs/webly.md); as the RetinaNet config. GFL's box branch
# predicts a distribution per side (4 x 17 logits); the box KD matches those
# logits by MSE. 1x: 12 x 7330 iterations; E_a = 8 and E_stop = 6 epochs.
_base_ = ['mmdet::gfl/gfl_r50_fpn_1x_coco.py', '../_base_/distill/kd3.py']
custom_imports = dict(imports=['mmkd_plugins'], allow_failed_imports=False)
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student=dict(_base_.model, neck=[_base_.model.neck, *_base_.kd_kd3_projector_256x5]),
    teacher='mmdet::gfl/gfl_r101_fpn_ms-2x_coco.py',
    teacher_ckpt='https://download.openmmlab.com/mmdetection/v2.0/gfl/'
    'gfl_r101_fpn_mstrain_2x_coco/gfl_r101_fpn_mstrain_2x_coco_20200629_200126-dd12f847.pth',
    init_student_from_teacher=[dict(student='neck.0', teacher='neck'),
                               dict(student='bbox_head', frozen=True)],
    detection_loss=False,
    distill_losses=dict(
        loss_kd=dict(student='bbox_head.gfl_cls', teacher='bbox_head.gfl_cls',
                     loss=dict(type='DenseKDLoss', temperature=1.0, loss_weight=1.0)),
        loss_kd_box=dict(student='bbox_head.gfl_reg', teacher='bbox_head.gfl_reg',
                         loss=dict(type='FeatureMSELoss', loss_weight=1.0)),
        loss_fa=dict(student='neck', teacher='neck',
                     loss=dict(type='FeatureMSELoss', loss_weight=1.0),
                     image_weights=dict(type='DisagreementWeights',
                                        student='bbox_head.gfl_cls'))),
    terms=[dict(type='MixDistributionTerm', module='neck', loss_weight=1e-3)])
train_dataloader = dict(
    sampler=dict(_delete_=True, type='WebSelectionSampler'),
    dataset=dict(_base_.kd_kd3_web_pool, type='WebPoolDataset',
                 pipeline=_base_.kd_kd3_web_pipeline))
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=87960, val_interval=7330)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=87960,
         milestones=[58640, 80630], gamma=0.1),
]
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=7330))
log_processor = dict(by_epoch=False)
optim_wrapper = dict(clip_grad=dict(max_norm=35, norm_type=2))
custom_hooks = [dict(type='TeacherEvalHook'),
                dict(type='WebSelectionHook', ramp_epochs=8, stop_epoch=6)]
