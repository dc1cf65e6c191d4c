# The benchmark teacher at twice the image size (the `cuda` preset): the
# x2 student's data and anchors with the teacher's backbone and schedule.
_base_ = ['./retinanet_r50-w32_glyphs.py']
model = dict(bbox_head=dict(anchor_generator=dict(octave_base_scale=3)))
data_root = 'data/glyphs-x2/'
train_dataloader = dict(dataset=dict(
    data_root=data_root,
    pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='Resize', scale=(256, 256), keep_ratio=True),
        dict(type='PackDetInputs'),
    ]))
val_dataloader = dict(dataset=dict(
    data_root=data_root,
    pipeline=[
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(256, 256), keep_ratio=True),
        dict(type='LoadAnnotations', with_bbox=True),
        dict(type='PackDetInputs',
             meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor')),
    ]))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator
