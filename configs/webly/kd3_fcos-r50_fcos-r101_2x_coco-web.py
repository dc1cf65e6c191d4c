# KD^3, FCOS R101-caffe (multi-scale 2x) -> R50-caffe, from an unlabelled web
# pool (docs/webly.md); as the RetinaNet config. Head alignment needs the
# teacher's head, so the student is the plain FCOS R50-caffe (the teacher's
# head layout), not FGD's student with the centre-sampling/GIoU tricks. The
# base FCOS config sets clip_grad=None, hence _delete_.
_base_ = ['mmdet::fcos/fcos_r50-caffe_fpn_gn-head_1x_coco.py', '../_base_/distill/kd3.py']
custom_imports = dict(imports=['mmkd_plugins'], allow_failed_imports=False)
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student=dict(_base_.model, neck=[_base_.model.neck, *_base_.kd_kd3_projector_256x5]),
    teacher='mmdet::fcos/fcos_r101-caffe_fpn_gn-head_ms-640-800-2x_coco.py',
    teacher_ckpt='https://download.openmmlab.com/mmdetection/v2.0/fcos/'
    'fcos_r101_caffe_fpn_gn-head_mstrain_640-800_2x_coco/'
    'fcos_r101_caffe_fpn_gn-head_mstrain_640-800_2x_coco-511424d6.pth',
    init_student_from_teacher=[dict(student='neck.0', teacher='neck'),
                               dict(student='bbox_head', frozen=True)],
    detection_loss=False,
    distill_losses=dict(
        loss_kd=dict(student='bbox_head.conv_cls', teacher='bbox_head.conv_cls',
                     loss=dict(type='DenseKDLoss', temperature=1.0, loss_weight=1.0)),
        loss_kd_box=dict(student='bbox_head.conv_reg', teacher='bbox_head.conv_reg',
                         loss=dict(type='FeatureMSELoss', loss_weight=1.0)),
        loss_fa=dict(student='neck', teacher='neck',
                     loss=dict(type='FeatureMSELoss', loss_weight=1.0),
                     image_weights=dict(type='DisagreementWeights',
                                        student='bbox_head.conv_cls'))),
    terms=[dict(type='MixDistributionTerm', module='neck', loss_weight=1e-3)])
train_dataloader = dict(
    sampler=dict(_delete_=True, type='WebSelectionSampler'),
    dataset=dict(_base_.kd_kd3_web_pool, type='WebPoolDataset',
                 pipeline=_base_.kd_kd3_web_pipeline))
train_cfg = dict(_delete_=True, type='IterBasedTrainLoop', max_iters=175920, val_interval=7330)
param_scheduler = [
    dict(type='ConstantLR', factor=1.0 / 3, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', by_epoch=False, begin=0, end=175920,
         milestones=[117280, 161260], gamma=0.1),
]
default_hooks = dict(checkpoint=dict(by_epoch=False, interval=7330))
log_processor = dict(by_epoch=False)
optim_wrapper = dict(clip_grad=dict(_delete_=True, max_norm=35, norm_type=2))
custom_hooks = [dict(type='TeacherEvalHook'),
                dict(type='WebSelectionHook', ramp_epochs=16, stop_epoch=12)]
