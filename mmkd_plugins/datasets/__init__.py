"""Datasets: a deterministic demo detection dataset of real handwritten digits."""
from .demo_digits import (CLASSES, GENERATOR_VERSION, SHIFTED_PREFIX, STYLES,
                          dataset_meta, generate_digits_detection,
                          read_image_groups, read_settings, resolve_settings)

__all__ = [
    'CLASSES', 'GENERATOR_VERSION', 'SHIFTED_PREFIX', 'STYLES', 'dataset_meta',
    'generate_digits_detection', 'read_image_groups', 'read_settings',
    'resolve_settings'
]
