"""KD^3's head alignment and unlabelled training in the distiller: a student
module copied from a teacher module of another name, a frozen copy of the
teacher's head behind a projector, and steps without a detection loss."""
import copy

import pytest
import torch
from conftest import distiller_cfg, make_batch, tiny_faster_rcnn, tiny_retinanet

from mmdet.registry import MODELS
from mmkd_plugins.distillers.detectors import parse_inherited


def projector(in_channels, out_channels, levels=3):
    """KD^3's 1x1-3x3-1x1 projector as three MMDetection ChannelMappers."""
    def mapper(i, o, k, act):
        return dict(type='ChannelMapper', in_channels=[i] * levels, out_channels=o,
                    kernel_size=k, norm_cfg=dict(type='BN'), act_cfg=act)
    mid = out_channels // 2
    return [mapper(in_channels, mid, 1, dict(type='ReLU')), mapper(mid, mid, 3, dict(type='ReLU')),
            mapper(mid, out_channels, 1, None)]


def aligned_student(student_fpn=16, teacher_fpn=32):
    """A student whose neck ends in a projector to the teacher's width and
    whose head has the teacher's layout."""
    student = tiny_retinanet(width=8, fpn=student_fpn)
    teacher = tiny_retinanet(width=16, fpn=teacher_fpn)
    student['neck'] = [student['neck'], *projector(student_fpn, teacher_fpn)]
    student['bbox_head'] = copy.deepcopy(teacher['bbox_head'])
    return student, teacher


SHARED_HEAD = [dict(student='neck.0.fpn_convs', teacher='neck.fpn_convs'),
               dict(student='bbox_head', frozen=True)]


def kd_spec():
    return dict(student='bbox_head.retina_cls', teacher='bbox_head.retina_cls',
                loss=dict(type='DenseKDLoss'))


def test_shared_head_is_the_teachers_and_stays_frozen():
    student, teacher = aligned_student(teacher_fpn=16)  # FPN widths equal: fpn_convs copy
    model = MODELS.build(distiller_cfg(
        student=student, teacher=teacher, detection_loss=False,
        losses=dict(loss_kd=kd_spec(), loss_fa=dict(student='neck', teacher='neck',
                                                    loss=dict(type='FeatureMSELoss'))),
        init_student_from_teacher=SHARED_HEAD))
    model.init_weights()
    head = model.student.bbox_head
    for key, value in model.teacher.bbox_head.state_dict().items():
        assert torch.equal(head.state_dict()[key], value), key
    # a module of another name: the student's neck.0 is the teacher's FPN
    for key, value in model.teacher.neck.fpn_convs.state_dict().items():
        assert torch.equal(model.student.neck[0].fpn_convs.state_dict()[key], value), key
    assert not any(p.requires_grad for p in head.parameters())
    model.train()
    assert not head.training and model.student.neck.training
    before = {k: v.clone() for k, v in head.state_dict().items()}
    optim = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    losses = model(**make_batch(model), mode='loss')
    # no detection loss on unlabelled images: the terms are the whole loss
    assert sorted(losses) == ['loss_fa', 'loss_kd']
    total, _ = model.parse_losses(losses)
    total.backward()
    optim.step()
    assert all(p.grad is None for p in head.parameters())
    # the gradient went through the frozen head into the projector and the backbone
    assert model.student.neck[1].convs[0].conv.weight.grad.abs().sum() > 0
    assert model.student.backbone.conv1.weight.grad.abs().sum() > 0
    for key, value in head.state_dict().items():
        assert torch.equal(value, before[key]), key


def test_error_head_widths_differ():
    student = tiny_retinanet(width=8, fpn=16)
    teacher = tiny_retinanet(width=16, fpn=32)
    with pytest.raises(ValueError, match=r"init_student_from_teacher: 'bbox_head' is frozen, so "
                                         r"the student runs the teacher's head, whose input "
                                         r"widths must match: the student's neck gives "
                                         r"\[16, 16, 16\] channels per level, the teacher's "
                                         r"head takes \[32, 32, 32\]; end the student's neck "
                                         r"with a projector to 32 channels"):
        MODELS.build(distiller_cfg(student=student, teacher=teacher,
                                   init_student_from_teacher=[dict(student='bbox_head',
                                                                   frozen=True)]))
    # with the projector the same pair builds
    student, teacher = aligned_student()
    MODELS.build(distiller_cfg(student=student, teacher=teacher,
                               init_student_from_teacher=[dict(student='bbox_head',
                                                               frozen=True)]))


def test_two_stage_shared_heads():
    student = tiny_faster_rcnn(width=8, fpn=16)
    teacher = tiny_faster_rcnn(width=16, fpn=32)
    student['neck'] = [student['neck'], *projector(16, 32, levels=5)]
    for head in ('rpn_head', 'roi_head'):
        student[head] = copy.deepcopy(teacher[head])
    model = MODELS.build(distiller_cfg(
        student=student, teacher=teacher, detection_loss=False,
        losses=dict(loss_rpn=dict(student='rpn_head.rpn_cls', teacher='rpn_head.rpn_cls',
                                  loss=dict(type='DenseKDLoss', num_classes=1))),
        init_student_from_teacher=[dict(student='rpn_head', frozen=True),
                                   dict(student='roi_head', frozen=True)]))
    model.init_weights()
    model.train()
    losses = model(**make_batch(model), mode='loss')
    assert list(losses) == ['loss_rpn'] and losses['loss_rpn'] > 0
    assert not model.student.roi_head.training


def test_detection_loss_false_needs_a_term():
    with pytest.raises(ValueError, match='detection_loss=False and no distillation term'):
        MODELS.build(distiller_cfg(losses={}, detection_loss=False))
    with pytest.raises(TypeError, match='detection_loss must be True or False'):
        MODELS.build(distiller_cfg(detection_loss='no'))


@pytest.mark.parametrize('entries, message', [
    ([dict(teacher='neck')], r'init_student_from_teacher\[0\]: keys are student \(required\)'),
    (['neck', dict(student='neck', frozen='yes')],
     r'init_student_from_teacher\[1\].frozen must be True or False'),
    ([3], r'init_student_from_teacher\[0\] must be a module name or a dict'),
    ([dict(student='neck', teacher='')], r'init_student_from_teacher\[0\]: student and teacher '
                                          r'must be module names'),
])
def test_parse_errors(entries, message):
    with pytest.raises((ValueError, TypeError), match=message):
        parse_inherited(entries)


def test_parse_forms():
    assert parse_inherited(['neck', dict(student='a.b', teacher='c', frozen=True)]) == (
        ('neck', 'neck', False), ('a.b', 'c', True))
    assert parse_inherited('bbox_head') == (('bbox_head', 'bbox_head', False), )


def test_error_renamed_module_with_other_shapes():
    student, teacher = aligned_student()  # student FPN 16 wide, teacher's 32
    with pytest.raises(ValueError, match=r"init_student_from_teacher: 'neck.0.fpn_convs' from "
                                         r"the teacher's 'neck.fpn_convs': student "
                                         r"neck.0.fpn_convs.0.conv.weight \(16, 16, 3, 3\) vs "
                                         r"teacher \(32, 32, 3, 3\)"):
        MODELS.build(distiller_cfg(student=student, teacher=teacher,
                                   init_student_from_teacher=SHARED_HEAD))
