# KD^3 ablation: no dynamic selection; every web image is drawn, as in web-kd.
_base_ = ['./kd3_retinanet-r18-w16_retinanet-r50-w32_glyphs-web.py']
train_dataloader = dict(sampler=dict(type='InfiniteSampler'))
custom_hooks = []
