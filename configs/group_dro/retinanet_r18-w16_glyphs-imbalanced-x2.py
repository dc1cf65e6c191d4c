# The group suite's student alone at twice the image size (the `cuda` preset
# of tools/benchmark_accuracy.py): ./retinanet_r18-w16_glyphs-imbalanced.py
# on the same data generated with --size 256 --scale-range 24 128 into
# data/glyphs_imbalanced-x2, with the anchors of
# ../benchmark/retinanet_r18-w16_glyphs-x2.py. The distillation rows reach
# the same through --cfg-options (mmkd_plugins/benchmark/suites.py).
_base_ = ['./retinanet_r18-w16_glyphs-imbalanced.py']
model = dict(bbox_head=dict(anchor_generator=dict(octave_base_scale=3)))
data_root = 'data/glyphs_imbalanced-x2/'
train_pipeline = _base_.train_pipeline
train_pipeline[2]['scale'] = (256, 256)
test_pipeline = _base_.test_pipeline
test_pipeline[1]['scale'] = (256, 256)
train_dataloader = dict(dataset=dict(data_root=data_root, pipeline=train_pipeline))
val_dataloader = dict(dataset=dict(data_root=data_root, pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'annotations/val.json')
test_evaluator = val_evaluator
