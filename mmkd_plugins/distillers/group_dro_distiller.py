"""GroupDRODistiller: group distributionally robust distillation.

Plain KD minimises the average loss over the training images, so the
majority groups (backgrounds, sites, scanners...) dominate and minority
groups lag behind. Group DRO (Sagawa et al., ICLR 2020,
https://arxiv.org/abs/1911.08731; applied to KD by Vilouras et al., MLMI
2023) minimises a weighted sum of the per-group losses instead, with weights
``q`` moved by exponentiated gradient ascent towards the groups that do
worst. This distiller wraps any :class:`DetectionDistiller` configuration
(FGD, FGD + UET, ...): it only calls the parent's ``loss`` once per group.

Each training iteration, with ``P`` the groups present in the batch:

1. per group ``g`` in ``P``: ``l_g`` = the sum of the parent's loss entries
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
  (``shared_features=True``), so BatchNorm sees the whole batch; the heads,
  the teacher and the distillation losses run per group on slices. (With
  ``False``, or a two-view batch, the whole parent loss runs per group and
  BatchNorm normalises each group by its own statistics.)
* Under DDP the per-group losses are all-reduced before the update (mean
  over all ranks' images of the group, weighted by image count), so every
  rank holds the same ``q``; each rank's objective uses the groups present
  in its own batch.
* ``q`` is the buffer ``group_weights`` (order: sorted ``groups``): it is in
  ``state_dict``, hence in checkpoints, and ``--resume`` restores it. It is
  updated only in training mode.
"""
from contextlib import contextmanager, nullcontext
from typing import Dict, List, Sequence

import torch
from mmengine.dist import all_reduce
from torch import Tensor

from mmdet.registry import MODELS
from .cross_view_distiller import CrossViewDistiller
from .detection_distiller import DetectionDistiller


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


def _subset(inputs, data_samples, idx: List[int], total: int):
    """Images ``idx`` of a batch: a tensor and a sample list, or dicts of
    them (one per view)."""
    if isinstance(inputs, dict):
        pairs = [_subset(inputs[v], data_samples[v], idx, total) for v in inputs]
        return ({v: p[0] for v, p in zip(inputs, pairs)},
                {v: p[1] for v, p in zip(inputs, pairs)})
    sub = inputs if len(idx) == total else inputs[torch.tensor(idx, device=inputs.device)]
    return sub, [data_samples[i] for i in idx]


@MODELS.register_module()
class GroupDRODistiller(DetectionDistiller):
    """A :class:`DetectionDistiller` trained with the group-DRO objective.

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
        shared_features (bool): Run the student's backbone and neck once on
            the whole batch and slice their outputs per group (default).
            BatchNorm then normalises with whole-batch statistics, as at
            test time it uses one set of running statistics for all groups;
            False runs the whole student per group (each group's images
            normalised by their own statistics: the first implementation,
            which trained markedly worse, see docs/benchmarks.md). Two-view
            (cross-view) batches always run per group.
        **kwargs: Arguments of :class:`DetectionDistiller`.

    ``loss`` returns ``loss_group_dro`` (the objective, the one entry that
    mmengine sums), and for logging only: ``gq_<group>`` (weight, every
    group), ``gl_<group>`` (the group loss used in the update; only for the
    groups present in the batch (of any rank), so that logged averages are
    not dragged to 0 by absent groups), and ``part_<x>`` for each parent
    entry ``loss_<x>`` (its ``q``-weighted value; the parts sum to
    ``loss_group_dro``).
    """

    def __init__(self, groups: Sequence[str] = None, step_size: float = 0.01,
                 group_key: str = 'group', shared_features: bool = True, **kwargs):
        self._check_args(groups, step_size, group_key)
        super().__init__(**kwargs)
        self.shared_features = bool(shared_features)
        self.groups = tuple(sorted(groups))
        self.step_size = float(step_size)
        self.group_key = group_key
        self._index = {g: i for i, g in enumerate(self.groups)}
        self.register_buffer('group_weights',
                             torch.full((len(self.groups),), 1.0 / len(self.groups)))

    @staticmethod
    def _check_args(groups, step_size, group_key) -> None:
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
        if isinstance(step_size, bool) or not isinstance(step_size, (int, float)) \
                or not step_size > 0 or step_size == float('inf'):
            raise ValueError(f'step_size must be a finite number > 0, got {step_size!r}')
        if not isinstance(group_key, str) or not group_key:
            raise ValueError(f'group_key must be a non-empty string, got {group_key!r}')

    def _shared_features(self, inputs):
        """The student's backbone and neck on the whole batch, once, with
        the records of that pass; None for two-view (dict) batches."""
        if isinstance(inputs, dict):
            return None
        rec = self._student_rec
        with rec.record() if rec is not None else nullcontext():
            feats = self.student.extract_feat(inputs)
        if rec is None:
            return feats, {}
        records = rec.recorded()
        rec.clear()
        return feats, records

    @contextmanager
    def _features_of(self, shared, idx: List[int]):
        """Within the block the student's ``extract_feat`` returns the rows
        ``idx`` of the shared pass, and its records start from them."""
        if shared is None:
            yield
            return
        feats, records = shared
        index = torch.tensor(idx, device=feats[0].device)
        sub = tuple(f.index_select(0, index) for f in feats)
        self._student_preset = {n: tuple(t.index_select(0, index) for t in levels)
                                for n, levels in records.items()}
        self.student.extract_feat = lambda _inputs: sub
        try:
            yield
        finally:
            del self.student.extract_feat
            self._student_preset = None

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

    def loss(self, inputs: Tensor, data_samples) -> Dict[str, Tensor]:
        """The group-DRO objective over the batch (module docstring).

        Args:
            inputs (Tensor | dict): Preprocessed images, shape (N, 3, H, W),
                or ``{view: images}`` for a cross-view parent.
            data_samples (list[DetDataSample] | dict): N samples whose
                metainfo holds ``group_key`` (or ``{view: samples}``).

        Returns:
            dict[str, Tensor]: ``loss_group_dro`` and logged diagnostics
            (class docstring), all scalars.
        """
        # Two-view batches (a cross-view parent) are dicts of views; the
        # weak view's samples name the groups and both views are split alike.
        first = next(iter(inputs.values())) if isinstance(inputs, dict) else inputs
        samples = next(iter(data_samples.values())) if isinstance(data_samples, dict) \
            else data_samples
        if first.shape[0] == 0:
            raise ValueError('empty batch: the distiller received 0 images')
        members = [self._group_of(s) for s in samples]
        present = sorted(set(members))
        per_group: Dict[int, Dict[str, Tensor]] = {}
        totals: List[Tensor] = []
        shared = self._shared_features(inputs) if self.shared_features else None
        for g in present:
            idx = [i for i, m in enumerate(members) if m == g]
            sub = _subset(inputs, data_samples, idx, len(members))
            with self._features_of(shared, idx):
                losses = super().loss(*sub)
            per_group[g] = {k: self._scalar(v) for k, v in losses.items()}
            totals.append(self.parse_losses(losses)[0])

        G = len(self.groups)
        weights = self.group_weights
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
        if self.training:
            weights = exponentiated_gradient_step(weights, group_loss, global_present,
                                                  self.step_size)
            self.group_weights.copy_(weights)

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

    @staticmethod
    def _scalar(value) -> Tensor:
        # The reduction mmengine's parse_losses applies to one entry.
        if isinstance(value, Tensor):
            return value.mean()
        return sum(v.mean() for v in value)


@MODELS.register_module()
class GroupDROCrossViewDistiller(GroupDRODistiller, CrossViewDistiller):
    """Group DRO over :class:`CrossViewDistiller`: each group's loss is the
    cross-view distiller's full loss (detection on both views, feature
    losses, within- and cross-view terms) on that group's images, both views
    split alike. Arguments: those of both parents (``groups``,
    ``step_size``, ``group_key``, ``cross_view``, ...).
    """
