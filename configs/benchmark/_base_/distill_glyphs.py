# What every distillation row of the glyph benchmark shares: the R18-w16
# student, the R50-w32 teacher trained by the harness (`make accuracy`
# writes it; tools/benchmark_accuracy.py passes its path), and, as in the
# COCO recipe, the student's FPN output convs and head start from the
# teacher's. The lateral convs cannot: their inputs are the backbones'
# stage outputs, which differ in width. A method config adds
# `distill_losses`; this file alone is the "inherit" ablation (the teacher's
# neck and head, no distillation loss), the twin of every method row.
_base_ = ['../retinanet_r18-w16_glyphs.py']
custom_imports = dict(imports=['mmkd_plugins'], allow_failed_imports=False)
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student='{{fileDirname}}/../retinanet_r18-w16_glyphs.py',
    teacher='{{fileDirname}}/../retinanet_r50-w32_glyphs.py',
    teacher_ckpt='work_dirs/accuracy/glyphs/teacher_seed0/iter_3600.pth',
    init_student_from_teacher=('neck.fpn_convs', 'bbox_head'))
