"""Per-image weights from how much the student's and the teacher's dense
class outputs disagree: KD^3's weighted feature alignment, for detectors.

KD^3 (Tang et al., ICCV 2023, https://arxiv.org/abs/2307.11469) weights the
feature-alignment loss of image ``i`` by ``w_i = sigmoid(||z_S,i - z_T,i||_2)``
(detached), where ``z`` are the two models' class logits of the image: the
more they disagree, the more the image counts (``w`` lies in [0.5, 1)).

A dense detector has a class logit per anchor and location, not per image.
The image-level logit of class ``c`` is taken as its largest logit over all
anchors, locations and levels (:func:`image_logits`): the evidence for the
strongest object of that class, the logit of the image's best class-``c``
detection before the score threshold. The distance is then over the ``C``
classes, as in KD^3 (a distance over the full dense map would grow with the
image size and saturate the sigmoid).

:class:`DisagreementWeights` provides them to a ``distill_losses`` entry::

    loss_fa=dict(student='neck', teacher='neck', loss=dict(type='FeatureMSELoss'),
                 image_weights=dict(type='DisagreementWeights',
                                    student='bbox_head.retina_cls',
                                    teacher='bbox_head.retina_cls'))

and the entry passes ``w_i`` as the loss's ``weights`` (one ``(N, 1, 1, 1)``
map per level, ``losses/base.py``), so any host loss can be weighted.
"""
from typing import Optional, Sequence

import torch
from torch import Tensor

from mmdet.registry import MODELS
from ..checks import check_positive_int
from .parts import Probe, Step


def image_logits(levels: Sequence[Tensor], num_classes: int) -> Tensor:
    """Image-level class logits of a dense head's class maps.

    Args:
        levels (Sequence[Tensor]): One ``(N, A*C, H, W)`` class map per level,
            channels anchor-major (``a*C + c``), as MMDetection's dense heads
            lay them out.
        num_classes (int): ``C``.

    Returns:
        Tensor: ``(N, C)``, per class the largest logit over anchors,
        locations and levels.
    """
    per_level = []
    for t in levels:
        n, channels, h, w = t.shape
        if channels % num_classes:
            raise ValueError(f'a class map of {channels} channels does not hold '
                             f'{num_classes} classes per anchor')
        per_level.append(t.reshape(n, channels // num_classes, num_classes, h * w).amax(dim=(1, 3)))
    return torch.stack(per_level).amax(dim=0)


def disagreement_weights(student: Tensor, teacher: Tensor) -> Tensor:
    """``sigmoid(||z_S,i - z_T,i||_2)`` per image, detached.

    Args:
        student (Tensor): ``(N, C)`` image-level logits of the student.
        teacher (Tensor): ``(N, C)`` of the teacher.

    Returns:
        Tensor: ``(N,)`` float32 in [0.5, 1).
    """
    return torch.sigmoid((student.detach().float() - teacher.detach().float()).norm(dim=1))


@MODELS.register_module()
class DisagreementWeights:
    """The ``image_weights`` provider of a ``distill_losses`` entry (module
    docstring): one weight per image from the disagreement of two recorded
    dense class maps.

    Args:
        student (str): The student's class-map module, e.g.
            ``'bbox_head.retina_cls'`` (``'bbox_head.conv_cls'`` for FCOS,
            ``'bbox_head.gfl_cls'`` for GFL, ``'rpn_head.rpn_cls'`` with
            ``num_classes=1`` for a two-stage detector's objectness).
        teacher (str, optional): The teacher's; default the same name.
        num_classes (int, optional): Classes per anchor; default the
            teacher's class count.
    """

    def __init__(self, student: str = 'bbox_head.retina_cls', teacher: Optional[str] = None,
                 num_classes: Optional[int] = None):
        for name, value in (('student', student), ('teacher', teacher or student)):
            if not isinstance(value, str) or not value.split('.')[0] in ('bbox_head', 'rpn_head'):
                raise ValueError(f'image_weights.{name} must name a dense head\'s class '
                                 f'conv (bbox_head.* or rpn_head.*), got {value!r}')
        self.student, self.teacher = student, teacher or student
        self.num_classes = None if num_classes is None else \
            check_positive_int('image_weights.num_classes', num_classes)

    def build(self, probe: Probe, key: str, num_classes: Optional[int]) -> None:
        """Check the probed class maps (``key``: the entry, for messages)."""
        if self.num_classes is None:
            if num_classes is None:
                raise ValueError(f'{key}.image_weights: the teacher has no class count; '
                                 'set num_classes')
            self.num_classes = num_classes
        s, t = probe.shapes('student', self.student), probe.shapes('teacher', self.teacher)
        if [x[1] for x in s] != [x[1] for x in t] or len(s) != len(t):
            raise ValueError(f'{key}.image_weights: the student\'s {self.student!r} gives '
                             f'{[x[1] for x in s]} channels per level, the teacher\'s '
                             f'{self.teacher!r} {[x[1] for x in t]}; the class maps must match')
        if any(x[1] % self.num_classes for x in t):
            raise ValueError(f'{key}.image_weights: {t[0][1]} channels do not hold '
                             f'num_classes={self.num_classes} classes per anchor')

    def __call__(self, step: Step) -> Tensor:
        """``(N,)`` weights of the step's images."""
        return disagreement_weights(
            image_logits(step.student.get(self.student), self.num_classes),
            image_logits(step.teacher.get(self.teacher), self.num_classes))
