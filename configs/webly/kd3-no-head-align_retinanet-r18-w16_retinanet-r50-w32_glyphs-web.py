# KD^3 ablation: no head alignment. The student keeps its own neck (no
# projector) and its own head, both started from the teacher's as in web-kd
# and trained by the dense KD terms; the weighted feature alignment compares
# the student's FPN with the teacher's directly (both 64 wide).
_base_ = ['./kd3_retinanet-r18-w16_retinanet-r50-w32_glyphs-web.py']
model = dict(
    student='{{fileDirname}}/../benchmark/retinanet_r18-w16_glyphs.py',
    init_student_from_teacher=['neck.fpn_convs', 'bbox_head'])
