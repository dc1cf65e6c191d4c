"""An unlabelled image pool (KD^3's web images) and the sampler that draws
only the images the selection keeps (``docs/webly.md``).

The pool is what MMDetection's semi-supervised configs call an unlabelled
dataset: a COCO json with ``images`` and an empty ``annotations`` list,
read by ``CocoDataset`` with empty-ground-truth filtering off.
:class:`WebPoolDataset` is that ``CocoDataset`` plus the checks a pool
needs, failing with the config key: a pool file or image folder that does
not exist, a pool without images. Any annotations in the file are dropped
(with a warning): the student learns from the teacher, never from labels.

:class:`WebSelectionSampler` is MMDetection's ``InfiniteSampler`` that
skips the images the last selection round rejected
(:class:`~mmkd_plugins.hooks.WebSelectionHook` sets them), so every batch
is full, as when KD^3 rebuilds its data loader from the selected images
each epoch. Until a round has run it yields exactly ``InfiniteSampler``'s
stream.

Both carry ``exported_as``: ``tools/export_student.py`` writes them as their
MMDetection parents into the standalone student config, so plain MMDetection
loads it.
"""
import os.path as osp
import warnings
from typing import Iterator, Optional, Sized

import numpy as np
import torch
from mmengine.dataset import InfiniteSampler
from mmengine.registry import DATA_SAMPLERS

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS

_KEY = 'train_dataloader.dataset'


def _is_local(path: str) -> bool:
    return '://' not in str(path)


@DATASETS.register_module()
class WebPoolDataset(CocoDataset):
    """An unlabelled COCO-format image pool (module docstring).

    Takes ``CocoDataset``'s arguments; ``filter_cfg`` may set ``min_size``
    (the smaller image side to keep), ``filter_empty_gt`` does not apply.
    """
    exported_as = 'CocoDataset'

    def load_data_list(self):
        if _is_local(self.ann_file) and not osp.isfile(self.ann_file):
            raise FileNotFoundError(f'{_KEY}.ann_file: the web pool\'s annotation file '
                                    f'{self.ann_file!r} does not exist')
        img_dir = self.data_prefix.get('img', '')
        if img_dir and _is_local(img_dir) and not osp.isdir(img_dir):
            raise FileNotFoundError(f'{_KEY}.data_prefix.img: the web pool\'s image folder '
                                    f'{img_dir!r} does not exist')
        data_list = super().load_data_list()
        if not data_list:
            raise ValueError(f'{_KEY}.ann_file: the web pool {self.ann_file!r} holds no images')
        labelled = sum(len(info['instances']) for info in data_list)
        if labelled:
            warnings.warn(f'{_KEY}.ann_file: {self.ann_file!r} holds {labelled} annotations; '
                          'the web pool is read as images only, so they are dropped')
            for info in data_list:
                info['instances'] = []
        return data_list

    def filter_data(self):
        """Keep every image at least ``filter_cfg.min_size`` on its smaller side."""
        min_size = (self.filter_cfg or {}).get('min_size', 0)
        kept = [info for info in self.data_list if min(info['width'], info['height']) >= min_size]
        if not kept:
            raise ValueError(f'{_KEY}.filter_cfg.min_size={min_size} leaves none of the '
                             f'{len(self.data_list)} images of the web pool')
        return kept


@DATA_SAMPLERS.register_module()
class WebSelectionSampler(InfiniteSampler):
    """``InfiniteSampler`` that yields only the kept images (module docstring).

    Args:
        dataset (Sized): The web pool.
        shuffle (bool): Default True.
        seed (int, optional): Random seed; synchronised across ranks when None.
    """
    exported_as = 'InfiniteSampler'

    def __init__(self, dataset: Sized, shuffle: bool = True, seed: Optional[int] = None):
        super().__init__(dataset, shuffle=shuffle, seed=seed)
        self.keep: Optional[np.ndarray] = None

    def set_keep(self, keep: Optional[np.ndarray]) -> None:
        """Draw only indices ``i`` with ``keep[i]`` from now on (``None``: all).

        Raises:
            ValueError: ``keep`` does not have one entry per image, or keeps none.
        """
        if keep is not None:
            keep = np.asarray(keep, dtype=bool)
            if keep.shape != (self.size, ):
                raise ValueError(f'keep has shape {keep.shape}, the pool {self.size} images')
            if not keep.any():
                raise ValueError('keep rejects every image of the pool')
        self.keep = keep

    def _infinite_indices(self) -> Iterator[int]:
        """InfiniteSampler's stream (same seed, same order), skipping the
        images rejected at the moment they come up."""
        g = torch.Generator()
        g.manual_seed(self.seed)
        while True:
            order = torch.randperm(self.size, generator=g) if self.shuffle \
                else torch.arange(self.size)
            for i in order.tolist():
                if self.keep is None or self.keep[i]:
                    yield i
