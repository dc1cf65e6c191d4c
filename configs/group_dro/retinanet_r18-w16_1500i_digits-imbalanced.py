# The demo student (R18-w16 RetinaNet) trained alone on the group-imbalanced
# digits: the baseline of the group-DRO table. The imbalanced data settings
# live here; the KD and group-DRO configs of this folder inherit them.
#   python tools/make_demo_data.py --out data/digits_imbalanced --train 1000 \
#       --val 200 --seed 0 \
#       --style-probs train:plain=0.45,gradient=0.3,texture=0.2,photo=0.05
# Training: 450 plain / 300 gradient / 200 texture / 50 photo images;
# validation: 50 of each (byte-identical to data/digits' validation split).
_base_ = ['../demo/retinanet_r18-w16_digits.py']
custom_imports = dict(imports=['mmkd_plugins'], allow_failed_imports=False)

data_root = 'data/digits_imbalanced/'
backend_args = None
# PackDetInputs' default meta_keys plus 'group' (GroupCocoDataset fills it;
# GroupDRODistiller reads it from each data sample).
meta_keys = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
             'flip', 'flip_direction', 'group')
train_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='PackDetInputs', meta_keys=meta_keys),
]
test_pipeline = [
    dict(type='LoadImageFromFile', backend_args=backend_args),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
                    'group')),
]
train_dataloader = dict(
    dataset=dict(type='GroupCocoDataset', group_key='group', data_root=data_root,
                 pipeline=train_pipeline))
val_dataloader = dict(
    dataset=dict(type='GroupCocoDataset', group_key='group', data_root=data_root,
                 pipeline=test_pipeline))
test_dataloader = val_dataloader
# coco/bbox_mAP as before, plus group/<name>/bbox_mAP, group/worst_bbox_mAP,
# group/mean_bbox_mAP and group/worst_group.
val_evaluator = dict(type='GroupCocoMetric', group_key='group',
                     ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator
