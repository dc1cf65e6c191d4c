"""The training "dataset" of data-free distillation: no images, only what
drives mmengine's training loop.

mmengine's ``IterBasedTrainLoop`` draws a batch from ``train_dataloader``
every iteration (and skips as many on ``--resume``). In data-free
distillation the images come from the generator, so each item is only its
index; the batch size is the number of images a step generates. The
dataset also carries the teacher's class names (``metainfo``), which
mmengine writes into every checkpoint and the exported student keeps.
"""
from typing import Optional

from torch.utils.data import Dataset

from mmdet.registry import DATASETS
from ..checks import check_positive_int


@DATASETS.register_module()
class DataFreeDataset(Dataset):
    """``length`` items ``dict(index=i)``.

    Args:
        metainfo (dict, optional): At least ``classes``, the teacher's class
            names in its label order (``palette`` too, for visualisation).
        metainfo_from (str, optional): Instead of ``metainfo``: a registered
            dataset type whose ``METAINFO`` to copy, e.g. ``'CocoDataset'``.
        length (int): Items per pass; with ``InfiniteSampler`` it only sets
            how often the sampler reshuffles. Default 1000.
    """

    def __init__(self, metainfo: Optional[dict] = None, metainfo_from: Optional[str] = None,
                 length: int = 1000):
        key = 'train_dataloader.dataset'
        if (metainfo is None) == (metainfo_from is None):
            raise ValueError(f'{key}: give the teacher\'s classes by metainfo=dict(classes=...) '
                             "or by metainfo_from='<a dataset type>', one of the two")
        if metainfo_from is not None:
            cls = DATASETS.get(metainfo_from)
            if cls is None or not isinstance(getattr(cls, 'METAINFO', None), dict):
                raise ValueError(f'{key}.metainfo_from={metainfo_from!r} is not a registered '
                                 'dataset type with a METAINFO')
            metainfo = cls.METAINFO
        if not isinstance(metainfo, dict) or not metainfo.get('classes'):
            raise ValueError(f'{key}.metainfo must name the teacher\'s classes, e.g. '
                             f"metainfo=dict(classes=('person', ...)); got {metainfo!r}")
        self.metainfo = dict(metainfo, classes=tuple(metainfo['classes']))
        self.length = check_positive_int('train_dataloader.dataset.length', length)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.length:
            raise IndexError(f'index {index} out of range for {self.length} items')
        return dict(index=index)
