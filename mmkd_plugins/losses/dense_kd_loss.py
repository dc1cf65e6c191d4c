"""Single-view logit distillation of a dense head (the CRLD baseline, and
the student loss of data-free distillation).

Dense heads (RetinaNet, FCOS, GFL, ATSS) score every anchor location with
independent per-class sigmoids, so their logits are distilled class by class
with a binary KL (:func:`binary_kl`), summed over classes and averaged over
locations. :class:`~mmkd_plugins.losses.CrossViewLoss` uses the same KL on two
views. :class:`DenseL1Loss` is TA-DFKD's student loss instead: the mean
absolute difference of the raw outputs (class logits or box regressions).
"""
from typing import Optional

import torch.nn.functional as F
from torch import Tensor

from mmdet.registry import MODELS
from ..checks import check_number, check_positive_int
from .base import BaseDistillLoss, weighted_mean


def binary_kl(student: Tensor, teacher: Tensor, temperature: float = 1.0) -> Tensor:
    """Per-class binary KL ``T^2 KL(Bern(p_t) || Bern(p_s))``, ``p = sigmoid(z/T)``.

    Computed from log-sigmoids, so saturated logits give no inf or NaN.

    Args:
        student (Tensor): Logits, any shape.
        teacher (Tensor): Logits, same shape.
        temperature (float): > 0.

    Returns:
        Tensor: Same shape, non-negative (up to rounding).
    """
    s, t = student / temperature, teacher / temperature
    log_ps, log_ps_neg = F.logsigmoid(s), F.logsigmoid(-s)
    log_pt, log_pt_neg = F.logsigmoid(t), F.logsigmoid(-t)
    kl = log_pt.exp() * (log_pt - log_ps) + log_pt_neg.exp() * (log_pt_neg - log_ps_neg)
    return kl * temperature**2


@MODELS.register_module()
class DenseKDLoss(BaseDistillLoss):
    """Single-view logit distillation of a dense head: per-class binary KL.

    The baseline CRLD is compared with. Name a sigmoid classification conv of
    the head in the distiller spec, e.g. ``student='bbox_head.retina_cls'``.
    Per level: ``T^2 * sum_{anchor rows, classes} KL(p_t || p_s) / rows``,
    i.e. summed over classes and averaged over anchor locations; ``weights``
    multiply the per-class terms (``losses/base.py``).

    Args:
        num_classes (int): Classes per anchor (filled in by the distiller).
        temperature (float): > 0. Default 1.0.
        loss_weight (float): Multiplier. Default 1.0.
    """
    requires_same_classes = True

    def __init__(self, num_classes: int, temperature: float = 1.0,
                 loss_weight: float = 1.0) -> None:
        super().__init__(loss_weight)
        self.num_classes = check_positive_int('num_classes', num_classes)
        self.temperature = check_number('temperature', temperature, inclusive=False)

    def level_loss(self, index: int, student: Tensor, teacher: Tensor,
                   weight: Optional[Tensor], data_samples) -> Tensor:
        kl = binary_kl(student, teacher, self.temperature)
        # Sum over classes: the mean over all elements times C.
        return weighted_mean(kl, weight) * self.num_classes


@MODELS.register_module()
class DenseL1Loss(BaseDistillLoss):
    """L1 between student and teacher outputs of a dense head, TA-DFKD's
    student loss (the official code's ``F.l1_loss(s_logit, t_logit)``).

    Per level: the mean over all elements of ``|s - t|`` on the raw maps
    (logits for a class conv such as ``bbox_head.retina_cls``, deltas for a
    regression conv); levels are summed. Unlike :class:`DenseKDLoss` it
    weighs every logit alike, the many clear background ones included.
    ``weights`` multiply the per-element terms (``losses/base.py``).

    Args:
        loss_weight (float): Multiplier. Default 1.0.
    """

    def level_loss(self, index: int, student: Tensor, teacher: Tensor,
                   weight: Optional[Tensor], data_samples) -> Tensor:
        return weighted_mean((student - teacher).abs(), weight)
