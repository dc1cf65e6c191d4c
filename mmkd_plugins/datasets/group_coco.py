"""GroupCocoDataset: a COCO dataset whose images belong to named groups.

Group-robust training (:class:`~mmkd_plugins.distillers.GroupDRODistiller`)
needs the group of every training image, and group-wise evaluation
(:class:`~mmkd_plugins.evaluation.GroupCocoMetric`) needs it for every
validation image. Both read it from an image-level field of the COCO json,
e.g. the ``group`` (or ``style``) field the demo generator writes::

    "images": [{"id": 1, "file_name": "000000.png", ..., "group": "photo"}, ...]

Config sketch (``configs/group_dro/`` has complete ones)::

    dataset=dict(type='GroupCocoDataset', group_key='group', ...,
                 pipeline=[..., dict(type='PackDetInputs', meta_keys=(
                     'img_id', 'img_path', 'ori_shape', 'img_shape',
                     'scale_factor', 'flip', 'flip_direction', 'group'))])

``PackDetInputs`` copies only the keys named in ``meta_keys`` into a data
sample's metainfo, so ``'group'`` must be added there.
"""
from collections import Counter
from typing import Dict, List

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS

# The key of the data info (and so of the data sample's metainfo) that holds
# the group, whatever json field it was read from.
GROUP_INFO_KEY = 'group'
_MISSING = object()


@DATASETS.register_module()
class GroupCocoDataset(CocoDataset):
    """:class:`~mmdet.datasets.CocoDataset` that records each image's group.

    Every data info gets ``data_info['group']``: the image's ``group_key``
    field, as a string (numeric group ids become ``'0'``, ``'1'``...). The
    sorted list of the group names found in the annotation file is put into
    ``metainfo['groups']`` (groups of images that ``filter_cfg`` later drops
    included).

    Args:
        group_key (str): The image-level json field that names the group.
            Whatever the field, the value is stored under ``'group'``, so
            pipelines and :class:`GroupDRODistiller` need no change when
            grouping by, e.g., ``'style'``. Default ``'group'``.
        **kwargs: Arguments of :class:`~mmdet.datasets.CocoDataset`.

    Raises:
        ValueError: At load time, when no image has ``group_key`` or one
            image lacks it (naming the key, the image id and the file), or
            when a value is not a string or an integer.
    """

    def __init__(self, *args, group_key: str = 'group', **kwargs):
        if not isinstance(group_key, str) or not group_key:
            raise ValueError(f'group_key must be a non-empty string, got {group_key!r}')
        self.group_key = group_key
        super().__init__(*args, **kwargs)

    def parse_data_info(self, raw_data_info: dict) -> dict:
        """CocoDataset's data info plus ``'group'`` (unchecked here; see
        :meth:`load_data_list`)."""
        data_info = super().parse_data_info(raw_data_info)
        img = raw_data_info['raw_img_info']
        data_info[GROUP_INFO_KEY] = img.get(self.group_key, _MISSING)
        data_info['file_name'] = img.get('file_name')
        return data_info

    def load_data_list(self) -> List[dict]:
        """Load the annotations, check every image's group and fill
        ``metainfo['groups']``."""
        data_list = super().load_data_list()
        missing = [d for d in data_list if d[GROUP_INFO_KEY] is _MISSING]
        if data_list and len(missing) == len(data_list):
            raise ValueError(
                f'group_key={self.group_key!r}: no image in {self.ann_file} has a '
                f'{self.group_key!r} field (e.g. image id {data_list[0]["img_id"]}); '
                'set group_key to the image-level field that names the group')
        if missing:
            first = missing[0]
            raise ValueError(
                f'group_key={self.group_key!r}: image id {first["img_id"]} '
                f'({first["file_name"]!r}) in {self.ann_file} has no {self.group_key!r} '
                f'field ({len(missing)} of {len(data_list)} images lack it)')
        for info in data_list:
            value = info.pop(GROUP_INFO_KEY)
            file_name = info.pop('file_name')
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise ValueError(
                    f'group_key={self.group_key!r}: image id {info["img_id"]} '
                    f'({file_name!r}) has {self.group_key}={value!r}; a group must '
                    'be a string or an integer')
            info[GROUP_INFO_KEY] = str(value)
        self._metainfo['groups'] = sorted({d[GROUP_INFO_KEY] for d in data_list})
        return data_list


def image_groups(dataset, who: str) -> List[str]:
    """The group of every image of ``dataset``, in index order.

    Args:
        dataset: A dataset whose ``get_data_info(i)`` holds ``'group'``
            (e.g. :class:`GroupCocoDataset`, or a wrapper of one).
        who (str): The caller, named in error messages (a config ``type``).

    Raises:
        ValueError: the dataset has no ``get_data_info``, or an image has no
            group (naming its index).
    """
    if not hasattr(dataset, 'get_data_info'):
        raise ValueError(f'{who}: {type(dataset).__name__} has no get_data_info(); use a '
                         'GroupCocoDataset')
    groups = []
    for i in range(len(dataset)):
        group = dataset.get_data_info(i).get(GROUP_INFO_KEY)
        if group is None:
            raise ValueError(f'{who}: image {i} of {type(dataset).__name__} has no '
                             f'{GROUP_INFO_KEY!r} in its data info; use a GroupCocoDataset '
                             '(group_key names the json field)')
        groups.append(group)
    return groups


def group_counts(dataset, who: str) -> Dict[str, int]:
    """``{group: number of images}`` of ``dataset``, sorted by name (the
    ``n_g`` of group DRO's adjustment and of inverse-frequency weights).

    Args:
        dataset: See :func:`image_groups`.
        who (str): The caller, named in error messages.
    """
    return dict(sorted(Counter(image_groups(dataset, who)).items()))
