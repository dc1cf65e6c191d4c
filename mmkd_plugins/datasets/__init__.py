"""Datasets: a deterministic demo detection dataset of real handwritten
digits, a COCO dataset that records each image's group, and a sampler
that balances the groups."""
from .demo_digits import (CLASSES, GENERATOR_VERSION, SHIFTED_PREFIX, STYLES,
                          dataset_meta, generate_digits_detection,
                          read_image_groups, read_settings, resolve_settings)
from .group_coco import GroupCocoDataset
from .group_sampler import GroupBalancedSampler

__all__ = [
    'CLASSES', 'GENERATOR_VERSION', 'SHIFTED_PREFIX', 'STYLES', 'GroupBalancedSampler',
    'GroupCocoDataset',
    'dataset_meta', 'generate_digits_detection', 'read_image_groups', 'read_settings',
    'resolve_settings'
]
