"""CWD: channel-wise distillation of spatial distributions.

Shu et al., "Channel-wise Knowledge Distillation for Dense Prediction",
ICCV 2021.
"""
from typing import Optional

import torch.nn.functional as F
from torch import Tensor

from mmdet.registry import MODELS
from ..checks import check_number
from .base import BaseDistillLoss


def cwd_level_loss(student: Tensor,
                   teacher: Tensor,
                   temperature: float = 1.0,
                   weight: Optional[Tensor] = None) -> Tensor:
    """Channel-wise KL divergence of one level.

    Each channel map is turned into a distribution over its H x W positions
    with a softmax of ``F / temperature``; the loss is
    ``tau^2 * sum_{n,c} KL(p_T[n,c] || p_S[n,c]) / (N * C)``. The ``tau^2``
    keeps gradient magnitudes comparable across temperatures.

    Args:
        student (Tensor): (N, C, H, W).
        teacher (Tensor): (N, C, H, W), same shape.
        temperature (float): Softmax temperature, > 0. Defaults to 1.0.
        weight (Tensor, optional): Non-negative, broadcastable to
            (N, C, H, W). It multiplies each position's term of the KL sum,
            ``w[n,c,h,w] * p_T * (log p_T - log p_S)``, before the sums; a
            spatial (N, 1, H, W) weight therefore scales a location in every
            channel's KL, and a per-channel weight is used as is rather than
            averaged over channels. As everywhere (``losses/base.py``), no
            renormalisation: a constant ``k`` scales the loss by ``k``.

    Returns:
        Tensor: Scalar.
    """
    n, c = student.shape[:2]
    # log_softmax on both sides: exact zeros of p_T then multiply a finite
    # log instead of producing 0 * -inf.
    log_p_t = F.log_softmax(teacher.flatten(2) / temperature, dim=2)
    log_p_s = F.log_softmax(student.flatten(2) / temperature, dim=2)
    kl_terms = log_p_t.exp() * (log_p_t - log_p_s)  # (N, C, H*W)
    if weight is not None:
        kl_terms = kl_terms * weight.expand_as(student).flatten(2)
    return kl_terms.sum() * (temperature**2 / (n * c))


@MODELS.register_module()
class CWDLoss(BaseDistillLoss):
    """Channel-wise distillation (CWD).

    Shu et al., "Channel-wise Knowledge Distillation for Dense Prediction",
    ICCV 2021. Each channel's activation map is read as a distribution over
    positions, and the student minimises, channel by channel, its KL
    divergence from the teacher's (:func:`cwd_level_loss`); this stresses
    where each channel is most active rather than its exact values.

    Published detection setting (the RetinaNet configs released alongside
    the paper, mmdetection-distiller): the FPN outputs, temperature 1, loss
    weight 5.

    Args:
        temperature (float): Softmax temperature, > 0. Defaults to 1.0.
        loss_weight (float): Multiplier of the summed level losses.
            Defaults to 1.0.
    """

    def __init__(self,
                 temperature: float = 1.0,
                 loss_weight: float = 1.0) -> None:
        super().__init__(loss_weight=loss_weight)
        self.temperature = check_number(
            'temperature', temperature, inclusive=False)

    def level_loss(self, level, student, teacher, weight, data_samples):
        return cwd_level_loss(student, teacher, self.temperature, weight)

    def extra_repr(self) -> str:
        return f'temperature={self.temperature}, {super().extra_repr()}'
