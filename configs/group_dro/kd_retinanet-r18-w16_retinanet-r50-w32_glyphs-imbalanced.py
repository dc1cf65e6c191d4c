# Plain FGD distillation on the group-imbalanced glyph data: the benchmark's
# FGD row (../fgd/fgd_retinanet-r18-w16_retinanet-r50-w32_glyphs.py: teacher
# trained on the balanced glyph data, the student's FPN output convs and head
# inherited from it, FGD's published weights) on the data of
# ./retinanet_r18-w16_glyphs-imbalanced.py. The `kd` row of the group suite.
_base_ = ['./retinanet_r18-w16_glyphs-imbalanced.py']
model = dict(
    _delete_=True,
    type='DetectionDistiller',
    student='{{fileDirname}}/../benchmark/retinanet_r18-w16_glyphs.py',
    teacher='{{fileDirname}}/../benchmark/retinanet_r50-w32_glyphs.py',
    teacher_ckpt='work_dirs/accuracy/glyphs/teacher_seed0/iter_3600.pth',
    init_student_from_teacher=('neck.fpn_convs', 'bbox_head'),
    distill_losses=dict(
        loss_fgd=dict(
            student='neck', teacher='neck',
            loss=dict(type='FGDLoss', temperature=0.5, alpha_fg=1e-3, beta_bg=5e-4,
                      gamma_mask=5e-4, lambda_rela=5e-6))))
