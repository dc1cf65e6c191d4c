"""Datasets: a COCO dataset that records each image's group, and a sampler
that balances the groups; an unlabelled web pool and the sampler that draws
the images KD^3's selection keeps. The synthetic data generators are in
:mod:`mmkd_plugins.synthetic`."""
from .group_coco import GroupCocoDataset, group_counts, image_groups
from .group_sampler import GroupBalancedSampler
from .web_pool import WebPoolDataset, WebSelectionSampler

__all__ = ['GroupBalancedSampler', 'GroupCocoDataset', 'WebPoolDataset', 'WebSelectionSampler',
           'group_counts', 'image_groups']
