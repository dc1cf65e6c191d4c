# KD^3 on a COCO-scale web pool (docs/webly.md). Variable names start with kd_
# so that this base merges with any other, and hold no mmkd_plugins `type`
# (see ./fgd.py); a config places them:
#   student=dict(_base_.model, neck=[_base_.model.neck, *_base_.kd_kd3_projector_256x5])
#   train_dataloader=dict(dataset=dict(_base_.kd_kd3_web_pool, type='WebPoolDataset'), ...)
#
# KD^3's projector (1x1-3x3-1x1, half width inside, BatchNorm after each conv,
# ReLU after the first two; the last ReLU is dropped because FPN features are
# signed), one per FPN level, for a 256-wide FPN with 5 levels: three
# MMDetection ChannelMappers at the end of the student's neck, so the student
# stays a plain MMDetection detector.
kd_kd3_projector_256x5 = [
    dict(type='ChannelMapper', in_channels=[256] * 5, out_channels=128, kernel_size=1,
         norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU')),
    dict(type='ChannelMapper', in_channels=[128] * 5, out_channels=128, kernel_size=3,
         norm_cfg=dict(type='BN'), act_cfg=dict(type='ReLU')),
    dict(type='ChannelMapper', in_channels=[128] * 5, out_channels=256, kernel_size=1,
         norm_cfg=dict(type='BN'), act_cfg=None),
]
# The web pool: any unlabelled COCO-format file (images, an empty
# "annotations" list, the 80 COCO categories), e.g. COCO's own unlabelled
# images as MMDetection's semi-supervised configs use them. Replace it with
# your web images; the teacher's training images must not be among them.
kd_kd3_web_pool = dict(
    data_root='data/coco/',
    ann_file='annotations/image_info_unlabeled2017.json',
    data_prefix=dict(img='unlabeled2017/'),
    filter_cfg=dict(_delete_=True, min_size=32))
# An unlabelled image needs only its pixels.
kd_kd3_web_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='Resize', scale=(1333, 800), keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs'),
]
