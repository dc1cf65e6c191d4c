"""Evaluation: COCO mAP per group, worst group and mean over groups."""
from .group_coco_metric import GroupCocoMetric

__all__ = ['GroupCocoMetric']
