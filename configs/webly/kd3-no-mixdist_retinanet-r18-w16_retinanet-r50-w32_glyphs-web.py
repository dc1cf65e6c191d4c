# KD^3 ablation: no MixDistribution term.
_base_ = ['./kd3_retinanet-r18-w16_retinanet-r50-w32_glyphs-web.py']
model = dict(terms=[])
