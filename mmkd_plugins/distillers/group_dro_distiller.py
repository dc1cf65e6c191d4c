"""GroupDRODistiller: group distributionally robust distillation.

Plain KD minimises the average loss over the training images, so the
majority groups (backgrounds, sites, scanners...) dominate and minority
groups lag behind. Group DRO (Sagawa et al., ICLR 2020,
https://arxiv.org/abs/1911.08731; applied to KD by Vilouras et al., MLMI
2023) minimises a weighted sum of the per-group losses instead, with weights
``q`` moved by exponentiated gradient ascent towards the groups that do
worst. :class:`GroupDRO` is an objective (:mod:`.parts`), so it wraps any
distiller configuration (FGD, FGD + UET, cross-view, ...): it only calls the
distiller's ``step`` once per group.

Each training iteration, with ``P`` the groups present in the batch:

1. per group ``g`` in ``P``: ``l_g`` = the sum of the step's loss entries
   (detection + distillation) on the images of ``g`` alone (a sub-batch; the
   sub-batches partition the batch);
2. ``q_g <- q_g * exp(eta * l_g)`` for ``g`` in ``P``, rescaled so that the
   groups of ``P`` keep their total mass ``sum_{g in P} q_g``; an absent
   group keeps its weight exactly, and ``q`` stays a distribution;
3. objective ``L = sum_{g in P} q_g l_g / sum_{g in P} q_g`` with the
   *updated*, detached ``q`` (Sagawa's online algorithm uses the updated
   weights too).

Renormalising over ``P`` in step 3 keeps the loss on the scale of one
detector's loss whichever groups a batch holds (Sagawa's code sums over
present groups without it, so a batch without the heavy groups gets a
smaller gradient). With all groups present the two agree.

Things to know:

* The student's backbone and neck run once on the whole batch
  (:meth:`DetectionDistiller.student_features`), so BatchNorm sees the whole
  batch, as it does at test time; the heads, the teacher and the terms run
  per group on slices. A two-view batch still runs the whole step per group
  (BatchNorm normalising each group by its own statistics), as
  ``configs/group_dro/group-dro-crld_*`` was trained; sharing it too would
  change that config's numbers, so it is left for a measured change.
* Under DDP the per-group losses are all-reduced before the update (mean
  over all ranks' images of the group, weighted by image count), so every
  rank holds the same ``q``; each rank's objective uses the groups present
  in its own batch.
* ``q`` is the distiller's buffer ``group_weights`` (order: sorted
  ``groups``): it is in ``state_dict``, hence in checkpoints, and
  ``--resume`` restores it. It is updated only in training mode.
"""
from typing import Dict, List, Sequence

import torch
from mmengine.dist import all_reduce
from torch import Tensor, nn

from mmdet.registry import MODELS
from ..checks import check_number
from .cross_view_distiller import cross_view_parts
from .detection_distiller import DetectionDistiller
from .parts import Batch


def exponentiated_gradient_step(weights: Tensor, losses: Tensor, present: Tensor,
                                step_size: float) -> Tensor:
    """One group-DRO weight update, restricted to the present groups.

    ``q_g * exp(eta * l_g)`` for present ``g``, rescaled so that the present
    groups keep their total mass; computed as a softmax of ``log q + eta * l``
    so that large ``eta * l`` cannot overflow.

    Args:
        weights (Tensor): Current weights ``q``, shape (G,), a distribution.
        losses (Tensor): Group losses ``l``, shape (G,); entries of absent
            groups are ignored.
        present (Tensor): Bool mask of the present groups, shape (G,).
        step_size (float): ``eta`` > 0.

    Returns:
        Tensor: The new weights, shape (G,); absent entries unchanged.
    """
    new = weights.clone()
    mass = weights[present].sum()
    if mass > 0:
        logits = weights[present].log() + step_size * losses[present].to(weights.dtype)
        new[present] = mass * torch.softmax(logits, dim=0)
    return new


def _check_groups(groups) -> None:
    if groups is None:
        raise ValueError('groups is required: the names of all groups, e.g. '
                         "groups=['plain', 'gradient', 'texture', 'photo']")
    if isinstance(groups, str) or not isinstance(groups, Sequence):
        raise ValueError(f'groups must be a list of group names, got {groups!r}')
    if len(groups) == 0:
        raise ValueError('groups is empty: list the group names, e.g. '
                         "groups=['plain', 'gradient', 'texture', 'photo']")
    bad = [g for g in groups if not isinstance(g, str) or not g]
    if bad:
        raise ValueError(f'groups must be non-empty strings, got {bad}')
    dup = sorted({g for g in groups if list(groups).count(g) > 1})
    if dup:
        raise ValueError(f'groups has duplicates: {dup}')
    lossy = [g for g in groups if 'loss' in g]
    if lossy:
        raise ValueError(f'groups {lossy}: a group name must not contain "loss" '
                         '(mmengine would sum its logged diagnostics into the loss)')


@MODELS.register_module()
class GroupDRO:
    """The group-DRO objective (module docstring) over any distiller.

    Args:
        groups (Sequence[str]): Names of all groups (non-empty, unique, no
            name containing ``'loss'``: mmengine would add its logged
            diagnostics to the loss). Stored sorted; ``group_weights[i]``
            belongs to ``self.groups[i]``.
        step_size (float): ``eta`` of the exponentiated-gradient update,
            > 0. Default 0.01 (Sagawa et al.'s value).
        group_key (str): Key of a data sample's metainfo that names its
            group (``GroupCocoDataset`` fills ``'group'``; add it to
            ``PackDetInputs``' ``meta_keys``). Default ``'group'``.

    The loss dict holds ``loss_group_dro`` (the objective, the one entry that
    mmengine sums), and for logging only: ``gq_<group>`` (weight, every
    group), ``gl_<group>`` (the group loss used in the update; only for the
    groups present in the batch (of any rank), so that logged averages are
    not dragged to 0 by absent groups), and ``part_<x>`` for each step entry
    ``loss_<x>`` (its ``q``-weighted value; the parts sum to
    ``loss_group_dro``).
    """

    def __init__(self, groups: Sequence[str] = None, step_size: float = 0.01,
                 group_key: str = 'group'):
        _check_groups(groups)
        self.step_size = check_number('step_size', step_size, inclusive=False)
        if not isinstance(group_key, str) or not group_key:
            raise ValueError(f'group_key must be a non-empty string, got {group_key!r}')
        self.groups = tuple(sorted(groups))
        self.group_key = group_key
        self._index = {g: i for i, g in enumerate(self.groups)}

    def attach(self, distiller: nn.Module) -> None:
        """``q``, uniform, as the distiller's buffer ``group_weights``."""
        distiller.register_buffer('group_weights',
                                  torch.full((len(self.groups),), 1.0 / len(self.groups)))

    def _group_of(self, sample) -> int:
        meta = sample.metainfo
        image = meta.get('img_path', meta.get('img_id', '?'))
        if self.group_key not in meta:
            raise KeyError(
                f'image {image} has no {self.group_key!r} in its metainfo (group_key='
                f'{self.group_key!r}); use GroupCocoDataset and add {self.group_key!r} '
                "to PackDetInputs' meta_keys")
        name = str(meta[self.group_key])
        if name not in self._index:
            raise ValueError(f'image {image} has {self.group_key}={name!r}, which is not '
                             f'one of groups={list(self.groups)}')
        return self._index[name]

    def __call__(self, distiller: nn.Module, batch: Batch) -> Dict[str, Tensor]:
        """The group-DRO objective over ``batch`` (module docstring).

        Args:
            distiller (DetectionDistiller): Runs the steps; holds ``q``.
            batch (Batch): Its first view's samples name the groups (every
                view is split alike).

        Returns:
            dict[str, Tensor]: ``loss_group_dro`` and logged diagnostics
            (class docstring), all scalars.
        """
        members = [self._group_of(s) for s in batch.data_samples[:batch.num_images]]
        present = sorted(set(members))
        per_group: Dict[int, Dict[str, Tensor]] = {}
        totals: List[Tensor] = []
        shared = distiller.student_features(batch) if batch.num_views == 1 else None
        for g in present:
            idx = [i for i, m in enumerate(members) if m == g]
            losses = distiller.step(batch.select(idx), shared and shared.select(idx))
            total, per_group[g] = distiller.parse_losses(losses)
            del per_group[g]['loss']  # the step's total, logged as gl_<group>
            totals.append(total)

        G = len(self.groups)
        weights = distiller.group_weights
        counts = torch.zeros(G, device=weights.device, dtype=weights.dtype)
        sums = torch.zeros_like(counts)
        for g, total in zip(present, totals):
            n = members.count(g)
            counts[g] = n
            sums[g] = n * total.detach().to(weights.dtype)
        stats = torch.stack([sums, counts])
        all_reduce(stats)  # no-op unless distributed
        global_present = stats[1] > 0
        group_loss = stats[0] / stats[1].clamp(min=1)
        if distiller.training:
            weights = exponentiated_gradient_step(weights, group_loss, global_present,
                                                  self.step_size)
            distiller.group_weights.copy_(weights)

        local = weights[present]
        local = local / local.sum().clamp(min=torch.finfo(local.dtype).tiny)
        out = {'loss_group_dro': sum(w * t for w, t in zip(local, totals))}
        parts: Dict[str, Tensor] = {}
        for w, g in zip(local, present):
            for key, value in per_group[g].items():
                parts[key] = parts.get(key, 0) + w * value.detach()
        for key, value in parts.items():
            out[key.replace('loss', 'part') if 'loss' in key else key] = value
        for g, (name, is_present) in enumerate(zip(self.groups, global_present.tolist())):
            out[f'gq_{name}'] = weights[g].detach().clone()
            if is_present:
                out[f'gl_{name}'] = group_loss[g].detach().clone()
        return out


@MODELS.register_module()
class GroupDRODistiller(DetectionDistiller):
    """``DetectionDistiller(objective=GroupDRO(groups, step_size, group_key))``,
    the registered name of the group-DRO configs.

    Args:
        groups, step_size, group_key: See :class:`GroupDRO`.
        **kwargs: Arguments of :class:`DetectionDistiller`.
    """

    def __init__(self, groups: Sequence[str] = None, step_size: float = 0.01,
                 group_key: str = 'group', **kwargs):
        super().__init__(objective=GroupDRO(groups, step_size, group_key), **kwargs)


@MODELS.register_module()
class GroupDROCrossViewDistiller(DetectionDistiller):
    """Group DRO over cross-view distillation, composed: the views and term
    of :class:`~mmkd_plugins.distillers.CrossViewDistiller` with the
    :class:`GroupDRO` objective. Each group's loss is the whole cross-view
    step (detection on both views, feature losses, within- and cross-view
    terms) on that group's images, both views split alike.

    Args:
        groups, step_size, group_key: See :class:`GroupDRO`.
        cross_view (dict): See :class:`~mmkd_plugins.distillers.CrossViewDistiller`.
        **kwargs: Arguments of :class:`DetectionDistiller`.
    """

    def __init__(self, groups: Sequence[str] = None, step_size: float = 0.01,
                 group_key: str = 'group', cross_view: dict = None, **kwargs):
        super().__init__(objective=GroupDRO(groups, step_size, group_key),
                         **cross_view_parts(cross_view), **kwargs)
