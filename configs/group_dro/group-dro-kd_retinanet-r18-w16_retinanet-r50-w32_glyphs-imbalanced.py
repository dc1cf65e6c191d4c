# Group-DRO FGD distillation on the group-imbalanced glyph data: the `kd`
# twin with the group-DRO objective (one exponentiated-gradient weight per
# background style; mmkd_plugins/distillers/group_dro_distiller.py).
_base_ = ['./kd_retinanet-r18-w16_retinanet-r50-w32_glyphs-imbalanced.py']
model = dict(
    type='GroupDRODistiller',
    groups=['plain', 'gradient', 'texture', 'photo'],
    step_size=0.01)
