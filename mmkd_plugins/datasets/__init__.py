"""Datasets: a COCO dataset that records each image's group, and a sampler
that balances the groups; an unlabelled web pool and the sampler that draws
the images KD^3's selection keeps; and the image-free dataset that drives
data-free distillation's loop. The synthetic data generators are in
:mod:`mmkd_plugins.synthetic`."""
from .data_free import DataFreeDataset
from .group_coco import GroupCocoDataset, group_counts, image_groups
from .group_sampler import GroupBalancedSampler
from .web_pool import WebPoolDataset, WebSelectionSampler

__all__ = ['DataFreeDataset', 'GroupBalancedSampler', 'GroupCocoDataset', 'WebPoolDataset',
           'WebSelectionSampler', 'group_counts', 'image_groups']
