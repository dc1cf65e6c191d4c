"""Datasets: a deterministic demo detection dataset of real handwritten
digits, and a COCO dataset that records each image's group."""
from .demo_digits import (CLASSES, GENERATOR_VERSION, SHIFTED_PREFIX, STYLES,
                          dataset_meta, generate_digits_detection,
                          read_image_groups, read_settings, resolve_settings)
from .group_coco import GroupCocoDataset

__all__ = [
    'CLASSES', 'GENERATOR_VERSION', 'SHIFTED_PREFIX', 'STYLES', 'GroupCocoDataset',
    'dataset_meta', 'generate_digits_detection', 'read_image_groups', 'read_settings',
    'resolve_settings'
]
