# What every distillation row of the group suite shares: the glyph
# benchmark's distiller (../../benchmark/_base_/glyph_distiller.py: the
# R18-w16 student, the R50-w32 teacher trained on the *balanced* glyph data,
# the student's FPN output convs and head inherited from it) on the
# imbalanced data of ../retinanet_r18-w16_glyphs-imbalanced.py. A config adds
# the distillation losses and the objective.
_base_ = ['../retinanet_r18-w16_glyphs-imbalanced.py',
          '../../benchmark/_base_/glyph_distiller.py']
model = dict(_base_.kd_glyphs, _delete_=True, type='DetectionDistiller')
