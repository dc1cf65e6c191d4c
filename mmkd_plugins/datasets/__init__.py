"""Datasets: a COCO dataset that records each image's group, and a sampler
that balances the groups. The synthetic data generators are in
:mod:`mmkd_plugins.synthetic`."""
from .group_coco import GroupCocoDataset, group_counts, image_groups
from .group_sampler import GroupBalancedSampler

__all__ = ['GroupBalancedSampler', 'GroupCocoDataset', 'group_counts', 'image_groups']
