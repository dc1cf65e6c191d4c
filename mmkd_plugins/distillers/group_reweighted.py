"""GroupReweighted: plain distillation with each image's loss weighted by the
inverse of its group's training-set size.

The simplest answer to a rare group is to count its images more: weight an
image of group ``g`` by ``1 / n_g`` (``n_g`` its group's training images),
so that in expectation every group contributes alike to the gradient, as
with group-balanced batches (:class:`~mmkd_plugins.datasets.GroupBalancedSampler`)
but without drawing the rare images over and over. It is the fixed-weight
baseline of group DRO (Sagawa et al., ICLR 2020, compare reweighting with
group DRO): the batch is split exactly as :class:`~.GroupDRO` splits it
(:class:`~.groups.GroupSplit`), only the weights differ and never move.

Each training iteration, with ``P`` the groups of this rank's batch, ``c_g``
the batch's images of group ``g`` and ``l_g`` the step's loss total on them
(detection + distillation, the mean over those images)::

    L = sum_{g in P} (c_g / n_g) l_g / sum_{g in P} (c_g / n_g)

i.e. the mean of the images' losses, each weighted by ``1 / n_g``,
normalised by the batch's total weight so that the loss stays on the scale
of one detector's loss. With equal ``n_g`` it is the image-weighted mean of
the group losses, plain KD up to each group's own loss normalisation (a
detector divides its loss by its positives, here per group).
"""
from typing import Dict, Mapping, Sequence

from torch import Tensor, nn

from mmdet.registry import MODELS
from .groups import GroupCounts, GroupSplit
from .parts import Batch


@MODELS.register_module()
class GroupReweighted:
    """The inverse-frequency objective (module docstring).

    Args:
        groups (Sequence[str]): Names of all groups; see
            :class:`~mmkd_plugins.distillers.GroupDRO`.
        group_key (str): The data samples' metainfo key naming the group.
            Default ``'group'``.
        group_counts (dict, optional): ``{group: n_g}``, the training images
            per group; or leave it out and add ``dict(type='GroupCountsHook')``
            to ``custom_hooks``, which counts the training dataset (and
            checks this value if given).

    The loss dict holds ``loss_group_reweighted`` (the objective, the one
    entry mmengine sums); for logging, ``gw_<group>`` (the weight share of
    each group present in this rank's batch, summing to 1), ``gl_<group>``,
    ``gdet_<group>``, ``gdist_<group>`` (as :class:`~.GroupDRO` logs them)
    and ``part_<x>`` for each step entry ``loss_<x>``.
    """

    def __init__(self, groups: Sequence[str] = None, group_key: str = 'group',
                 group_counts: Mapping[str, int] = None):
        self.split = GroupSplit(groups, group_key)
        self.groups = self.split.groups
        self.counts = GroupCounts(self.groups, group_counts, owner='GroupReweighted')

    def attach(self, distiller: nn.Module) -> None:
        """No state: the weights are fixed by the data."""

    def set_group_counts(self, counts: Mapping[str, int], source: str = 'the dataset') -> None:
        """Take ``n_g`` from ``source`` (:class:`~mmkd_plugins.hooks.GroupCountsHook`)."""
        self.counts.set(counts, source)

    def __call__(self, distiller: nn.Module, batch: Batch) -> Dict[str, Tensor]:
        """The reweighted loss of ``batch`` (module docstring)."""
        steps = self.split(distiller, batch)
        weights = steps.images / self.counts.tensor(steps.images)  # c_g / n_g
        out = steps.weighted(weights, 'loss_group_reweighted')
        share = weights / weights.sum()
        for g in steps.present:
            out[f'gw_{self.groups[g]}'] = share[g].detach().clone()
        out.update(steps.logs(self.groups))
        return out
