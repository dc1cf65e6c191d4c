"""GroupCocoMetric: COCO mAP overall, per group, for the worst group and
averaged over groups.

Group-robust methods are judged by their worst group (Sagawa et al., 2020),
not only by the average. The group of each image is read from an
image-level field of the annotation json (as :class:`GroupCocoDataset`
does), so the metric works on any detector's predictions, with a plain
``CocoDataset`` too::

    val_evaluator = dict(type='GroupCocoMetric', ann_file=..., metric='bbox',
                         group_key='group')

Reported (``coco/`` keys exactly as :class:`~mmdet.evaluation.CocoMetric`)::

    coco/bbox_mAP, coco/bbox_mAP_50, ...        all images
    group/<name>/bbox_mAP, .../bbox_mAP_50, ... one COCOeval per group
    group/worst_bbox_mAP, group/mean_bbox_mAP   min and mean over groups
    group/worst_group                           index of the worst group (by
                                                bbox_mAP) in the sorted names

With several metrics (``metric=['bbox', 'segm']``) each gets its worst and
mean; ``group/worst_group`` follows the first, ``group/worst_segm_group`` etc.
the others.

Loggers need numbers, so the worst group is an index; its name is logged.
"""
from collections import OrderedDict
from typing import Dict, List, Optional

from mmengine.logging import MMLogger

from mmdet.evaluation import CocoMetric
from mmdet.registry import METRICS


def read_groups(images: Dict[int, dict], group_key: str, ann_file: str) -> Dict[int, str]:
    """``{image id: group name}`` from COCO image records, checked.

    Args:
        images (dict[int, dict]): ``COCO.imgs`` of the annotation file.
        group_key (str): The image-level field that names the group.
        ann_file (str): For error messages.

    Raises:
        ValueError: the field is absent from all images, or from one (named).
    """
    missing = [i for i, img in images.items() if group_key not in img]
    if images and len(missing) == len(images):
        raise ValueError(f'group_key={group_key!r}: no image in {ann_file} has a '
                         f'{group_key!r} field; set group_key to the image-level field '
                         'that names the group')
    if missing:
        raise ValueError(f'group_key={group_key!r}: image id {missing[0]} in {ann_file} '
                         f'has no {group_key!r} field ({len(missing)} of {len(images)} '
                         'images lack it)')
    return {i: str(img[group_key]) for i, img in images.items()}


@METRICS.register_module()
class GroupCocoMetric(CocoMetric):
    """:class:`~mmdet.evaluation.CocoMetric` plus per-group results.

    Each group is evaluated by COCOeval restricted to the group's image ids
    (all images of the group in ``ann_file``, as the overall figure uses all
    images), with ``classwise`` off. A group without ground truth in the
    evaluated images gets COCO's -1 and is left out of the worst and mean.

    Args:
        ann_file (str): COCO json whose images carry ``group_key``. Required.
        group_key (str): Image-level field naming the group. Default
            ``'group'``.
        **kwargs: Arguments of :class:`~mmdet.evaluation.CocoMetric`.
    """

    def __init__(self, ann_file: Optional[str] = None, group_key: str = 'group', **kwargs):
        if ann_file is None:
            raise ValueError('GroupCocoMetric needs ann_file: the groups are read from '
                             'the image records of the annotation json')
        super().__init__(ann_file=ann_file, **kwargs)
        self.group_key = group_key
        self.image_groups = read_groups(self._coco_api.imgs, group_key, ann_file)
        self.groups: List[str] = sorted(set(self.image_groups.values()))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """CocoMetric's metrics of all images, then of each group.

        Args:
            results (list): ``(gt, pred)`` pairs, one per image, from
                :meth:`process`.

        Returns:
            dict[str, float]: CocoMetric's keys plus ``group/...`` keys
            (module docstring).
        """
        logger = MMLogger.get_current_instance()
        metrics = super().compute_metrics(results)
        if self.format_only or not metrics:
            return metrics
        all_ids, classwise = self.img_ids, self.classwise
        per_group: Dict[str, Dict[str, float]] = OrderedDict()
        try:
            self.classwise = False
            for name in self.groups:
                ids = sorted(i for i, g in self.image_groups.items() if g == name)
                subset = [r for r in results if self.image_groups.get(r[1]['img_id']) == name]
                if not subset:
                    logger.warning(f'GroupCocoMetric: no predictions for group {name!r}')
                    continue
                logger.info(f'GroupCocoMetric: group {name!r} ({len(ids)} images)')
                self.img_ids = ids
                per_group[name] = super().compute_metrics(subset)
        finally:
            self.img_ids, self.classwise = all_ids, classwise
        for name, group_metrics in per_group.items():
            for key, value in group_metrics.items():
                metrics[f'group/{name}/{key}'] = value
        metrics.update(self._summary(per_group, logger))
        return metrics

    def _summary(self, per_group: Dict[str, Dict[str, float]], logger) -> Dict[str, float]:
        """Worst and mean over groups of every ``<metric>_mAP``."""
        out = {}
        for n, metric in enumerate(self.metrics):
            key = f'{metric}_mAP'
            valid = {n: m[key] for n, m in per_group.items() if m.get(key, -1) >= 0}
            if not valid:
                continue
            worst = min(valid, key=valid.get)
            out[f'group/worst_{key}'] = valid[worst]
            out[f'group/mean_{key}'] = round(sum(valid.values()) / len(valid), 4)
            out['group/worst_group' if n == 0 else f'group/worst_{metric}_group'] = \
                float(self.groups.index(worst))
            logger.info(f'GroupCocoMetric: worst group by {key}: {worst!r} '
                        f'({valid[worst]:.3f}); mean over {len(valid)} groups '
                        f'{out[f"group/mean_{key}"]:.3f}')
        return out

    def evaluate(self, size: int) -> dict:
        """CocoMetric's evaluation, with the per-group keys under ``group/``
        instead of ``<prefix>/group/``."""
        metrics = super().evaluate(size)
        nested = f'{self.prefix}/group/' if self.prefix else None
        return {('group/' + k[len(nested):] if nested and k.startswith(nested) else k): v
                for k, v in metrics.items()}
