"""What the group objectives share: the group names, each image's group,
each group's training-set size, and one step per group.

:class:`~mmkd_plugins.distillers.GroupDRO` (weights moved towards the worst
group) and :class:`~mmkd_plugins.distillers.GroupReweighted` (fixed weights
``1 / n_g``) split a batch the same way and differ only in how they weight
the groups' losses, so that the benchmark compares the weighting alone.

One call of :class:`GroupSplit` on a batch:

1. the student's backbone and neck run once on the whole batch
   (:meth:`DetectionDistiller.student_features`; a two-view batch runs the
   whole step per group instead), so BatchNorm sees the batch as in plain
   KD;
2. the distiller's ``step`` runs once per group present, on that group's
   images (teacher, student heads, detection and distillation losses);
3. each group's detection loss (the student's own entries) and distillation
   loss (the entries of the distiller's terms) are averaged over all ranks'
   images of the group (an all-reduce weighted by image count; a no-op
   without DDP), so that every rank sees the same group losses.
"""
from collections import Counter
from typing import Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

import torch
from mmengine.dist import all_reduce
from torch import Tensor, nn

from ..checks import check_positive_int
from .parts import Batch


def check_groups(groups) -> Tuple[str, ...]:
    """The group names of a config, checked, sorted (the order of every
    per-group tensor).

    Raises:
        ValueError: missing, not a list, empty, duplicated, not non-empty
            strings, or containing ``'loss'`` (mmengine would sum logged
            diagnostics named after such a group into the loss).
    """
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
    dup = sorted(g for g, n in Counter(groups).items() if n > 1)
    if dup:
        raise ValueError(f'groups has duplicates: {dup}')
    lossy = [g for g in groups if 'loss' in g]
    if lossy:
        raise ValueError(f'groups {lossy}: a group name must not contain "loss" '
                         '(mmengine would sum its logged diagnostics into the loss)')
    return tuple(sorted(groups))


def check_group_counts(counts, groups: Sequence[str],
                       key: str = 'group_counts') -> Optional[Tuple[int, ...]]:
    """``{group: n_g}`` as a tuple in the order of ``groups`` (sorted names).

    Args:
        counts (Mapping[str, int] | None): Training images per group.
        groups (Sequence[str]): The objective's (sorted) group names.
        key (str): The config key, for messages.

    Returns:
        tuple[int] | None: ``None`` when ``counts`` is.

    Raises:
        ValueError: groups missing from or unknown to ``counts``, or a count
            that is not a positive int.
    """
    if counts is None:
        return None
    if not isinstance(counts, Mapping):
        raise ValueError(f'{key} must be a dict {{group: number of training images}}, '
                         f'got {counts!r}')
    missing = [g for g in groups if g not in counts]
    unknown = sorted(set(counts) - set(groups))
    if missing or unknown:
        raise ValueError(f'{key} must give every group of groups={list(groups)} exactly once: '
                         f'missing {missing}, unknown {unknown}')
    return tuple(check_positive_int(f'{key}[{g!r}]', counts[g]) for g in groups)


class GroupSteps(NamedTuple):
    """The per-group steps of one batch (``G`` = number of groups, sorted).

    Attributes:
        present (list[int]): The groups of this rank's batch, ascending.
        totals (list[Tensor]): Per present group, the step's loss total (the
            sum mmengine would optimise), with its graph.
        entries (list[dict]): Per present group, the step's logged entries
            (``distiller.parse_losses``), without the total.
        images (Tensor): (G,) images of each group in this rank's batch.
        seen (Tensor): (G,) bool, the group is in some rank's batch.
        detection (Tensor): (G,) detached mean detection loss of each group
            over all ranks' images (0 where not seen).
        distillation (Tensor): (G,) likewise, the distillation loss.
    """
    present: List[int]
    totals: List[Tensor]
    entries: List[Dict[str, Tensor]]
    images: Tensor
    seen: Tensor
    detection: Tensor
    distillation: Tensor

    @property
    def total(self) -> Tensor:
        """(G,) detection + distillation: each group's loss."""
        return self.detection + self.distillation

    def weighted(self, weights: Tensor, key: str) -> Dict[str, Tensor]:
        """The objective ``sum_g w_g l_g / sum_g w_g`` over the present groups,
        with ``weights`` (G,) detached, under ``key``; and for logging the
        weighted parts ``part_<x>`` of each step entry ``loss_<x>`` (they sum
        to the objective) and the other entries, weighted alike."""
        local = weights[self.present]
        local = local / local.sum().clamp(min=torch.finfo(local.dtype).tiny)
        out = {key: sum(w * t for w, t in zip(local, self.totals))}
        parts: Dict[str, Tensor] = {}
        for w, entries in zip(local, self.entries):
            for name, value in entries.items():
                parts[name] = parts.get(name, 0) + w * value.detach()
        for name, value in parts.items():
            out[name.replace('loss', 'part') if 'loss' in name else name] = value
        return out

    def logs(self, groups: Sequence[str]) -> Dict[str, Tensor]:
        """``gl_<group>`` (loss), ``gdet_<group>`` (detection part) and
        ``gdist_<group>`` (distillation part), for the groups seen, so that
        logged averages are not dragged to 0 by absent groups."""
        out = {}
        for g, name in enumerate(groups):
            if self.seen[g]:
                out[f'gl_{name}'] = self.total[g].clone()
                out[f'gdet_{name}'] = self.detection[g].clone()
                out[f'gdist_{name}'] = self.distillation[g].clone()
        return out


class GroupSplit:
    """Each image's group, and the distiller's step once per group
    (module docstring).

    Args:
        groups (Sequence[str]): All group names; see :func:`check_groups`.
        group_key (str): The data samples' metainfo key naming the group
            (``GroupCocoDataset`` fills ``'group'``; add it to
            ``PackDetInputs``' ``meta_keys``). Default ``'group'``.
    """

    def __init__(self, groups: Sequence[str] = None, group_key: str = 'group'):
        self.groups = check_groups(groups)
        if not isinstance(group_key, str) or not group_key:
            raise ValueError(f'group_key must be a non-empty string, got {group_key!r}')
        self.group_key = group_key
        self._index = {g: i for i, g in enumerate(self.groups)}

    def group_of(self, sample) -> int:
        """The index (into the sorted ``groups``) of a data sample's group."""
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

    def __call__(self, distiller: nn.Module, batch: Batch) -> GroupSteps:
        """Run the per-group steps of ``batch``.

        Args:
            distiller (DetectionDistiller): Runs the steps.
            batch (Batch): Its first view's samples name the groups (every
                view is split alike).

        Returns:
            GroupSteps: The groups' losses.
        """
        members = [self.group_of(s) for s in batch.data_samples[:batch.num_images]]
        present = sorted(set(members))
        distill_keys = {key for term in distiller.terms for key in term.keys}
        shared = distiller.student_features(batch) if batch.num_views == 1 else None
        G = len(self.groups)
        # Rows: image-weighted sums of detection and distillation loss, images.
        stats = torch.zeros(3, G, device=batch.inputs.device)
        totals, entries = [], []
        for g in present:
            idx = [i for i, m in enumerate(members) if m == g]
            losses = distiller.step(batch.select(idx), shared and shared.select(idx))
            total, log_vars = distiller.parse_losses(losses)
            del log_vars['loss']  # the total; logged as gl_<group>
            zero = total.new_zeros(()).detach()
            dist = sum((v.detach() for k, v in log_vars.items()
                        if 'loss' in k and k in distill_keys), zero)
            det = sum((v.detach() for k, v in log_vars.items()
                       if 'loss' in k and k not in distill_keys), zero)
            stats[:, g] = torch.stack([len(idx) * det, len(idx) * dist,
                                       det.new_tensor(float(len(idx)))]).to(stats.dtype)
            totals.append(total)
            entries.append(log_vars)
        images = torch.zeros(G, device=stats.device)
        images[present] = torch.tensor([float(members.count(g)) for g in present],
                                       device=stats.device)
        all_reduce(stats)  # no-op unless distributed
        per_group = stats[:2] / stats[2].clamp(min=1)
        return GroupSteps(present, totals, entries, images, stats[2] > 0,
                          per_group[0], per_group[1])


class GroupCounts:
    """The training images per group, ``n_g``, for an objective that needs
    them: from the config (``group_counts``) or handed over before training
    by :class:`~mmkd_plugins.hooks.GroupCountsHook`, which counts the
    training dataset; given both, they must agree.

    Args:
        groups (Sequence[str]): The objective's sorted group names.
        counts (Mapping[str, int], optional): ``group_counts`` of the config.
        owner (str): The objective's name, for messages.
    """

    def __init__(self, groups: Sequence[str], counts=None, owner: str = ''):
        self.groups, self.owner = tuple(groups), owner
        self.values = check_group_counts(counts, self.groups)
        self._from_config = self.values is not None

    def set(self, counts: Mapping[str, int], source: str) -> None:
        """Take the counts of ``source`` (e.g. the training dataset).

        Raises:
            ValueError: they differ from the config's ``group_counts``, or do
                not match ``groups``.
        """
        values = check_group_counts(counts, self.groups, key=f'the group counts of {source}')
        if self._from_config and values != self.values:
            raise ValueError(f'{self.owner}: group_counts={dict(zip(self.groups, self.values))} '
                             f'but {source} has {dict(zip(self.groups, values))}')
        self.values = values

    def tensor(self, like: Tensor) -> Tensor:
        """(G,) ``n_g`` as a tensor on ``like``'s device and dtype.

        Raises:
            RuntimeError: no counts were given or handed over.
        """
        if self.values is None:
            raise RuntimeError(
                f"{self.owner} needs each group's number of training images n_g: add "
                "dict(type='GroupCountsHook') to custom_hooks (it counts the training "
                "dataset's groups), or set group_counts=dict(<group>=n_g, ...)")
        return torch.tensor(self.values, dtype=like.dtype, device=like.device)
