# The benchmark student trained alone on the group-imbalanced glyph data:
# the `student` row of the group suite (tools/benchmark_accuracy.py --suite
# group, which makes the data). The imbalanced data settings live here; the
# distillation configs of this folder inherit them.
#   python tools/make_demo_data.py --dataset glyphs --out data/glyphs_imbalanced \
#       --style-probs train:plain=0.45,gradient=0.3,texture=0.2,photo=0.05
# Training: 1350 plain / 900 gradient / 600 texture / 150 photo images;
# validation: 250 of each, byte-identical to data/glyphs' validation split.
_base_ = ['../benchmark/retinanet_r18-w16_glyphs.py']
custom_imports = dict(imports=['mmkd_plugins'], allow_failed_imports=False)

data_root = 'data/glyphs_imbalanced/'
# The groups of this data (the background styles), for the group objectives
# and the group suite; a kd_ variable, so it is a definition the configs place.
kd_groups = ['plain', 'gradient', 'texture', 'photo']
# PackDetInputs' default meta_keys plus 'group' (GroupCocoDataset fills it;
# GroupDRODistiller reads it from each data sample).
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor',
                    'flip', 'flip_direction', 'group')),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
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
