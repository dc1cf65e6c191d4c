"""Distillation losses; importing this package registers them.

The feature and logit losses share the call convention of
:class:`BaseDistillLoss` (``loss(student, teacher, data_samples=None,
weights=None)``, one meaning of ``weights``: see ``base.py``).
:class:`CrossViewLoss` compares two views instead of FPN levels and documents
why it is a different kind of module. ``generator_loss.py`` holds the pure
functions of the data-free generator's loss (BN statistics, total
variation, the adversarial JS), which train images, not students.
"""
from .base import BaseDistillLoss, weighted_mean
from .cross_view_loss import (CrossViewLoss, cross_view_terms, sigmoid_confidence,
                              softmax_confidence, softmax_kl)
from .cwd_loss import CWDLoss, cwd_level_loss
from .dense_kd_loss import DenseKDLoss, DenseL1Loss, binary_kl
from .fgd_loss import (FGDLoss, GlobalContextBlock, boxes_to_cells,
                       fgd_feature_loss, fgd_mask_loss, fgd_masks,
                       fgd_relation_loss, spatial_channel_attention)
from .generator_loss import (adversarial_loss, binary_js, bn_statistics_distance, softmax_js,
                             total_variation)
from .mse_loss import FeatureMSELoss, feature_mse_level_loss
from .pkd_loss import PKDLoss, pkd_level_loss, standardize
from .uet_loss import (UncertaintyAwareLoss, add_uncertainty, mc_uncertainty,
                       minmax_per_image, uncertainty_weights)

__all__ = [
    'BaseDistillLoss', 'weighted_mean', 'CWDLoss', 'cwd_level_loss',
    'FGDLoss', 'GlobalContextBlock', 'boxes_to_cells', 'fgd_feature_loss',
    'fgd_mask_loss', 'fgd_masks', 'fgd_relation_loss',
    'spatial_channel_attention', 'FeatureMSELoss', 'feature_mse_level_loss',
    'PKDLoss', 'pkd_level_loss', 'standardize', 'UncertaintyAwareLoss',
    'mc_uncertainty', 'minmax_per_image', 'add_uncertainty', 'uncertainty_weights',
    'CrossViewLoss', 'DenseKDLoss', 'DenseL1Loss', 'binary_kl',
    'cross_view_terms', 'sigmoid_confidence', 'softmax_confidence', 'softmax_kl',
    'adversarial_loss', 'binary_js', 'bn_statistics_distance', 'softmax_js', 'total_variation'
]
