"""Group-balanced sampling for group-DRO training.

Group DRO (Sagawa et al., ICLR 2020) is run with group-balanced batches in
its authors' experiments: without them a minority group at 5 % of the data
is absent from two thirds of the batches of 8, and when present it is one
image whose weight ``q_g`` carries most of the step. ``GroupBalancedSampler``
draws each image with probability proportional to ``n_g ** -power`` (``n_g``
the size of its group), so at ``power=1`` every group is drawn equally often.
"""
from collections import Counter
from typing import Iterator, Optional, Sized

import torch
from mmengine.dataset import InfiniteSampler
from mmengine.registry import DATA_SAMPLERS

from .group_coco import image_groups


@DATA_SAMPLERS.register_module()
class GroupBalancedSampler(InfiniteSampler):
    """Infinite sampler (iteration-based training) that balances groups.

    Indices are drawn i.i.d. with replacement, image ``i`` with probability
    proportional to ``n_{g(i)} ** -power``: ``power=1`` gives each group the
    same share of the draws, ``power=0`` the data's own proportions (plain
    sampling with replacement), values between interpolate. Under DDP each
    rank takes every ``world_size``-th index of one seeded stream, as
    :class:`~mmengine.dataset.InfiniteSampler` does.

    Args:
        dataset (Sized): A dataset whose ``get_data_info(i)`` holds
            ``'group'`` (e.g. :class:`GroupCocoDataset`).
        power (float): >= 0. Default 1.0.
        seed (int, optional): Random seed; synchronised across ranks when
            None. Default None.
        shuffle (bool): Accepted so that an ``InfiniteSampler`` config
            (``shuffle=True``) switches by its ``type`` alone; the draws are
            random, so ``False`` is an error. Default True.

    Raises:
        ValueError: ``power < 0``, ``shuffle=False``, an empty dataset, or an
            image without a group (naming its index).
    """

    def __init__(self, dataset: Sized, power: float = 1.0, seed: Optional[int] = None,
                 shuffle: bool = True) -> None:
        if not shuffle:
            raise ValueError('GroupBalancedSampler draws at random: shuffle=False is not '
                             'supported')
        if isinstance(power, bool) or not isinstance(power, (int, float)) or power < 0:
            raise ValueError(f'GroupBalancedSampler: power must be a number >= 0, got {power!r}')
        if len(dataset) == 0:
            raise ValueError('GroupBalancedSampler: the dataset is empty')
        groups = image_groups(dataset, type(self).__name__)
        counts = Counter(groups)
        self.power = float(power)
        self.group_counts = dict(sorted(counts.items()))
        self.weights = torch.tensor([counts[g] ** -self.power for g in groups],
                                    dtype=torch.float64)
        super().__init__(dataset, shuffle=True, seed=seed)

    def _infinite_indices(self) -> Iterator[int]:
        g = torch.Generator()
        g.manual_seed(self.seed)
        while True:
            yield from torch.multinomial(self.weights, self.size, replacement=True,
                                         generator=g).tolist()
