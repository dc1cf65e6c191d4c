"""Datasets: a COCO dataset that records each image's group, a sampler
that balances the groups, and the image-free dataset that drives data-free
distillation's loop. The synthetic data generators are in
:mod:`mmkd_plugins.synthetic`."""
from .data_free import DataFreeDataset
from .group_coco import GroupCocoDataset
from .group_sampler import GroupBalancedSampler

__all__ = ['DataFreeDataset', 'GroupBalancedSampler', 'GroupCocoDataset']
