# What every distillation row of the glyph benchmark shares: the distiller
# of ./glyph_distiller.py on the glyph data. A method config adds
# `distill_losses`; this file alone is the "inherit" ablation (the teacher's
# neck and head, no distillation loss), the twin of every method row.
_base_ = ['../retinanet_r18-w16_glyphs.py', './glyph_distiller.py']
custom_imports = dict(imports=['mmkd_plugins'], allow_failed_imports=False)
model = dict(_base_.kd_glyphs, _delete_=True, type='DetectionDistiller')
