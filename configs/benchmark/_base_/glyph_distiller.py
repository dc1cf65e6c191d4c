# The glyph benchmark's distiller settings: the R18-w16 student, the R50-w32
# teacher trained by the harness (`make accuracy` writes it;
# tools/benchmark_accuracy.py passes its path) and, as in the COCO recipe,
# the student's FPN output convs and head started from the teacher's. The
# lateral convs cannot: their inputs are the backbones' stage outputs, which
# differ in width. A kd_ variable without `type` (see ../../_base_/distill/fgd.py),
# so that it merges with any data; a config places it:
#   model = dict(_base_.kd_glyphs, _delete_=True, type='DetectionDistiller')
kd_glyphs = dict(
    student='{{fileDirname}}/../retinanet_r18-w16_glyphs.py',
    teacher='{{fileDirname}}/../retinanet_r50-w32_glyphs.py',
    teacher_ckpt='work_dirs/accuracy/glyphs/teacher_seed0/iter_3600.pth',
    init_student_from_teacher=('neck.fpn_convs', 'bbox_head'))
