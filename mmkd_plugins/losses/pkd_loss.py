"""PKD: feature distillation with the Pearson correlation coefficient.

Cao et al., "PKD: General Distillation Framework for Object Detectors via
Pearson Correlation Coefficient", NeurIPS 2022.
"""
from typing import Optional

import torch
from torch import Tensor

from mmdet.registry import MODELS
from .base import BaseDistillLoss, weighted_mean

#: Floor of the standard deviation, so that a constant map normalises to 0.
PKD_EPS = 1e-6


def standardize(feat: Tensor, eps: float = PKD_EPS) -> Tensor:
    """Normalise each (sample, channel) map to zero mean and unit std.

    Computes ``(x - mean) / sqrt(var + eps^2)`` over H and W with the
    population variance (no Bessel correction), which makes
    :func:`pkd_level_loss` equal ``1 - r`` up to ``eps``. Putting ``eps``
    under the square root rather than adding it to the std keeps the
    gradient finite for constant maps, e.g. a 1 x 1 top FPN level on small
    images, where ``d std / d var`` would be infinite.

    Args:
        feat (Tensor): (N, C, H, W).
        eps (float): Floor of the std. Defaults to 1e-6.

    Returns:
        Tensor: (N, C, H, W), standardised over H and W.
    """
    centred = feat - feat.mean(dim=(2, 3), keepdim=True)
    var = centred.pow(2).mean(dim=(2, 3), keepdim=True)
    return centred * torch.rsqrt(var + eps * eps)


def pkd_level_loss(student: Tensor,
                   teacher: Tensor,
                   weight: Optional[Tensor] = None) -> Tensor:
    """PKD loss of one level: half the MSE of standardised features.

    For standardised maps ``mean((z_s - z_t)^2) / 2 = 1 - r``, where ``r``
    is the Pearson correlation between the student and teacher map, so
    the loss is the mean over (sample, channel) of ``1 - r``. It ignores
    the features' scale and offset, which is what lets PKD distil between
    heterogeneous detectors.

    Args:
        student (Tensor): (N, C, H, W).
        teacher (Tensor): (N, C, H, W), same shape.
        weight (Tensor, optional): Non-negative, broadcastable to
            (N, C, H, W). It multiplies the squared differences *after*
            standardisation (the statistics themselves are unweighted)
            before the mean (:func:`~mmkd_plugins.losses.base.weighted_mean`).

    Returns:
        Tensor: Scalar.
    """
    sq_err = (standardize(student) - standardize(teacher)).pow(2)
    return weighted_mean(sq_err, weight) / 2


@MODELS.register_module()
class PKDLoss(BaseDistillLoss):
    """Pearson-correlation feature distillation (PKD).

    Cao et al., "PKD: General Distillation Framework for Object Detectors
    via Pearson Correlation Coefficient", NeurIPS 2022. Published setting:
    distil all FPN levels; loss weight 6 for RetinaNet students.

    Per level: standardise every (sample, channel) map over H x W, then take
    half the mean squared error (:func:`pkd_level_loss`). Note that the
    authors' public implementation standardises each channel over the whole
    batch (N, H, W jointly); here each image is standardised on its own, so
    the loss is the mean of per-image ``1 - r`` and does not depend on which
    images share a batch.

    Args:
        loss_weight (float): Multiplier of the summed level losses.
            Defaults to 6.0 (RetinaNet).
    """

    def __init__(self, loss_weight: float = 6.0) -> None:
        super().__init__(loss_weight=loss_weight)

    def level_loss(self, level, student, teacher, weight, data_samples):
        return pkd_level_loss(student, teacher, weight)
