# What every web row of the glyph benchmark shares (docs/webly.md): the
# glyph distillation setup (R18-w16 student, R50-w32 teacher trained on the
# target data, the student's FPN output convs and head from the teacher's),
# trained on the unlabelled web pool instead of the target training images,
# which the student never sees. No detection loss: the pool has no labels.
# Validation stays on the target validation split (data/glyphs val). Make the
# pool with
#   python tools/make_demo_data.py --dataset glyphs-web --out data/glyphs_web
_base_ = ['../../benchmark/_base_/distill_glyphs.py']
web_pipeline = [
    dict(type='LoadImageFromFile', backend_args=None),
    dict(type='Resize', scale=(128, 128), keep_ratio=True),
    dict(type='PackDetInputs'),
]
train_dataloader = dict(
    dataset=dict(
        type='WebPoolDataset',  # MMDetection's CocoDataset of an unlabelled file, checked
        data_root='data/glyphs_web/',
        ann_file='annotations/web.json',
        data_prefix=dict(img='web/'),
        filter_cfg=dict(_delete_=True, min_size=4),
        pipeline=web_pipeline))
model = dict(detection_loss=False)
