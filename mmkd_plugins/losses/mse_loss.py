"""Plain feature imitation: mean squared error between feature maps."""
from typing import Optional

from torch import Tensor

from mmdet.registry import MODELS
from .base import BaseDistillLoss, weighted_mean


def feature_mse_level_loss(student: Tensor,
                           teacher: Tensor,
                           weight: Optional[Tensor] = None) -> Tensor:
    """Mean squared error of one level.

    Args:
        student (Tensor): (N, C, H, W).
        teacher (Tensor): (N, C, H, W), same shape.
        weight (Tensor, optional): Non-negative, broadcastable to
            (N, C, H, W); multiplies each squared error before the mean
            (:func:`~mmkd_plugins.losses.base.weighted_mean`).

    Returns:
        Tensor: Scalar.
    """
    return weighted_mean((student - teacher).pow(2), weight)


@MODELS.register_module()
class FeatureMSELoss(BaseDistillLoss):
    """Feature-imitation baseline: per-level MSE, summed over levels.

    The simplest feature distillation (as in FitNets, Romero et al., ICLR
    2015, applied to FPN levels). It is a baseline for the other losses and
    is sensitive to the teacher's feature scale, which is what PKD removes.
    Named ``FeatureMSELoss`` because MMDetection already registers
    ``MSELoss``.

    Args:
        loss_weight (float): Multiplier of the summed level losses.
            Defaults to 1.0.
    """

    def level_loss(self, level, student, teacher, weight, data_samples):
        return feature_mse_level_loss(student, teacher, weight)
