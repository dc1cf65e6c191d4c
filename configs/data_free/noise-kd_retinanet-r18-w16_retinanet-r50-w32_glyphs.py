# The lower bound of data-free distillation on the glyph benchmark: the
# TA-DFKD student loss (and initialisation) on Gaussian-noise images, no
# generator, no filter. What the teacher teaches through images that carry
# no glyph at all.
_base_ = ['./ta-dfkd_retinanet-r18-w16_retinanet-r50-w32_glyphs.py']
model = dict(
    data_free=dict(
        generator=dict(_delete_=True, type='GaussianNoiseImages', img_size=64, out_size=128,
                       std=0.25),
        lenient_filter=None))
custom_hooks = []
