# The twin of TA-DFKD on the glyph benchmark: the same generator, steps and
# student loss, with every generated image kept (no lenient filter): the
# paper's "basic" generator, trained by BN statistics and the adversarial
# term alone. ta-dfkd minus this row is what the filter adds.
_base_ = ['./ta-dfkd_retinanet-r18-w16_retinanet-r50-w32_glyphs.py']
model = dict(data_free=dict(lenient_filter=None))
