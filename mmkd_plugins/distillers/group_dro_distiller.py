"""GroupDRODistiller: group distributionally robust distillation.

Plain KD minimises the average loss over the training images, so the
majority groups (backgrounds, sites, scanners...) dominate and minority
groups lag behind. Group DRO (Sagawa et al., ICLR 2020,
https://arxiv.org/abs/1911.08731; applied to KD by Vilouras et al., MLMI
2023) minimises a weighted sum of the per-group losses instead, with weights
``q`` moved by exponentiated gradient (EG) ascent towards the groups that do
worst. :class:`GroupDRO` is an objective (:mod:`.parts`), so it wraps any
distiller configuration (FGD, FGD + UET, cross-view, ...): it runs the
distiller's ``step`` once per group (:class:`~.groups.GroupSplit`).

Each training iteration, with ``P`` the groups present in the batch:

1. per group ``g`` in ``P``: its detection loss ``det_g`` (the student's
   own entries) and distillation loss ``dist_g`` (the terms' entries) on
   its images alone; its loss is ``l_g = det_g + dist_g``;
2. the EG *signal* ``s_g`` (``signal``): ``det_g`` (the default),
   ``dist_g``, ``det_g + dist_g`` (``'sum'``), or the sum of both terms'
   z-scores against their running mean and spread (``'standardised'``),
   plus the group adjustment ``C / sqrt(n_g)`` (``adjustment`` = C, ``n_g``
   the group's training images);
3. ``q_g <- q_g * exp(eta * s_g)`` for ``g`` in ``P``, rescaled so that the
   groups of ``P`` keep their total mass ``sum_{g in P} q_g``; an absent
   group keeps its weight exactly, and ``q`` stays a distribution;
4. objective ``L = sum_{g in P} q_g l_g / sum_{g in P} q_g`` with the
   *updated*, detached ``q`` (Sagawa's online algorithm uses the updated
   weights too).

Why the signal is a choice, and detection by default: with FGD at its
published weight the distillation loss is an order of magnitude above the
detection loss (about 18 against 1 at the start on the demo digits), so
``q`` moved by ``l_g`` tracks how hard each background's features are to
imitate, not how hard its objects are to detect. ``'standardised'`` gives
both terms the same say whatever their scales; ``'sum'`` is the signal of
the first implementation, kept to reproduce it.

Why the adjustment (Sagawa et al., Section 5): a group's training loss
underestimates its test loss, the more so the fewer images it has (the
generalisation gap scales like ``1 / sqrt(n_g)``), so the update adds
``C / sqrt(n_g)`` to each group's signal. It only moves ``q``; the
objective weights the unadjusted losses (a constant per group has no
gradient anyway). ``C`` is tuned on validation data; ``n_g`` comes from
``group_counts`` or from :class:`~mmkd_plugins.hooks.GroupCountsHook`.

Renormalising over ``P`` in step 4 keeps the loss on the scale of one
detector's loss whichever groups a batch holds (Sagawa's code sums over
present groups without it, so a batch without the heavy groups gets a
smaller gradient). With all groups present the two agree.

Things to know:

* See :mod:`.groups` for how a batch is split: the student's backbone and
  neck run once on the whole batch; a two-view batch runs the whole step per
  group, as ``configs/group_dro/group-dro-crld_*`` was trained.
* Under DDP the per-group losses are all-reduced before the update (mean
  over all ranks' images of the group), so every rank holds the same ``q``;
  each rank's objective uses the groups present in its own batch.
* ``q`` is the distiller's buffer ``group_weights`` (order: sorted
  ``groups``); with ``signal='standardised'`` the running moments are the
  buffer ``group_signal_moments``. Both are in ``state_dict``, hence in
  checkpoints, and ``--resume`` restores them. They are updated only in
  training mode.
"""
import inspect
from typing import Dict, Mapping, Sequence, Tuple

import torch
from torch import Tensor, nn

from mmdet.registry import MODELS
from ..checks import check_choice, check_number
from .cross_view_distiller import cross_view_parts
from .detection_distiller import DetectionDistiller
from .groups import GroupCounts, GroupSplit, GroupSteps
from .parts import Batch

#: What the weights follow (module docstring, step 2).
SIGNALS = ('detection', 'distillation', 'sum', 'standardised')


def exponentiated_gradient_step(weights: Tensor, losses: Tensor, present: Tensor,
                                step_size: float) -> Tensor:
    """One group-DRO weight update, restricted to the present groups.

    ``q_g * exp(eta * l_g)`` for present ``g``, rescaled so that the present
    groups keep their total mass; computed as a softmax of ``log q + eta * l``
    so that large ``eta * l`` cannot overflow.

    Args:
        weights (Tensor): Current weights ``q``, shape (G,), a distribution.
        losses (Tensor): Group signals ``l``, shape (G,); entries of absent
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


def group_adjustment(counts: Tensor, scale: float) -> Tensor:
    """Sagawa et al.'s group adjustment ``C / sqrt(n_g)``.

    Args:
        counts (Tensor): Training images per group ``n_g``, shape (G,).
        scale (float): ``C`` >= 0.

    Returns:
        Tensor: Shape (G,), added to the groups' signals.
    """
    return scale / counts.sqrt()


def standardise(values: Tensor, present: Tensor, moments: Tensor,
                momentum: float) -> Tuple[Tensor, Tensor]:
    """Z-scores of each term's group losses against the term's running mean
    and standard deviation, updated with this step's present groups first.

    The running moments are exponential moving averages of the mean over
    the present groups of ``x`` and of ``x ** 2``, divided by the moving
    average of 1 (which corrects their start from zero, as Adam does), so
    the spread covers the differences between groups and between steps.

    Args:
        values (Tensor): ``x``, shape (T, G): term ``t``'s loss of group ``g``.
        present (Tensor): Bool mask of the present groups, shape (G,); at
            least one.
        moments (Tensor): Shape (T, 3): per term, the moving averages of
            ``mean_g x``, ``mean_g x ** 2`` and 1; zeros before the first
            step. Float64: ``E[x^2] - E[x]^2`` of losses near 20 would
            lose the spread to float32 rounding.
        momentum (float): In [0, 1): the weight of the past.

    Returns:
        tuple[Tensor, Tensor]: ``z``, shape (T, G), 0 for absent groups and
        for a term whose running spread is 0 (e.g. its first step with one
        group); the new moments, shape (T, 3).
    """
    x = values[:, present].to(moments.dtype)
    step = torch.stack([x.mean(1), (x ** 2).mean(1), torch.ones_like(x[:, 0])], dim=1)
    new = momentum * moments + (1 - momentum) * step
    mean = new[:, 0] / new[:, 2]
    std = (new[:, 1] / new[:, 2] - mean ** 2).clamp(min=0).sqrt()
    # Identical values leave a rounding-level spread, not a scale.
    spread = std > 1e-6 * mean.abs()
    z = torch.zeros_like(values, dtype=moments.dtype)
    z[:, present] = torch.where(spread[:, None],
                                (x - mean[:, None]) / std.clamp(min=1e-30)[:, None],
                                torch.zeros_like(x))
    return z, new


@MODELS.register_module()
class GroupDRO:
    """The group-DRO objective (module docstring) over any distiller.

    Args:
        groups (Sequence[str]): Names of all groups (non-empty, unique, no
            name containing ``'loss'``: mmengine would add its logged
            diagnostics to the loss). Stored sorted; ``group_weights[i]``
            belongs to ``self.groups[i]``.
        step_size (float): ``eta`` of the exponentiated-gradient update,
            > 0. Default 0.01 (Sagawa et al.'s value). Its effect depends on
            the signal's scale: z-scores (``'standardised'``) are about 1
            apart, detection losses a few tenths.
        group_key (str): Key of a data sample's metainfo that names its
            group (``GroupCocoDataset`` fills ``'group'``; add it to
            ``PackDetInputs``' ``meta_keys``). Default ``'group'``.
        signal (str): What ``q`` follows, one of :data:`SIGNALS`:
            ``'detection'`` (default), ``'distillation'``, ``'sum'`` (both, as
            first implemented) or ``'standardised'`` (module docstring).
        adjustment (float): ``C`` >= 0 of the group adjustment ``C /
            sqrt(n_g)`` added to each group's signal. Default 0 (none).
        group_counts (dict, optional): ``{group: n_g}``, the training images
            per group, needed when ``adjustment > 0``; or leave it out and
            add ``dict(type='GroupCountsHook')`` to ``custom_hooks``, which
            counts the training dataset (and checks this value if given).
        momentum (float): In [0, 1), the running moments' weight of the past
            for ``signal='standardised'``. Default 0.99 (about the last 100
            iterations).

    The loss dict holds ``loss_group_dro`` (the objective, the one entry that
    mmengine sums), and for logging only: ``gq_<group>`` (weight, every
    group); for the groups present in the batch of any rank (so that logged
    averages are not dragged to 0 by absent groups) ``gl_<group>`` (loss),
    ``gdet_<group>`` and ``gdist_<group>`` (its detection and distillation
    parts) and, in training, ``gsig_<group>`` (the signal of the update,
    adjustment included); and ``part_<x>`` for each step entry ``loss_<x>``
    (its ``q``-weighted value; the parts sum to ``loss_group_dro``).
    """

    def __init__(self, groups: Sequence[str] = None, step_size: float = 0.01,
                 group_key: str = 'group', signal: str = 'detection', adjustment: float = 0.0,
                 group_counts: Mapping[str, int] = None, momentum: float = 0.99):
        self.split = GroupSplit(groups, group_key)
        self.groups = self.split.groups
        self.step_size = check_number('step_size', step_size, inclusive=False)
        self.signal = check_choice('signal', signal, SIGNALS)
        self.adjustment = check_number('adjustment', adjustment)
        self.momentum = check_number('momentum', momentum)
        if self.momentum >= 1:
            raise ValueError(f'momentum must be in [0, 1), got {momentum}')
        self.counts = GroupCounts(self.groups, group_counts, owner=f'GroupDRO(adjustment='
                                                                  f'{self.adjustment:g})')

    def attach(self, distiller: nn.Module) -> None:
        """``q``, uniform, as the distiller's buffer ``group_weights`` (and the
        running moments of ``signal='standardised'``)."""
        if self.signal in ('distillation', 'standardised') and not distiller.terms:
            raise ValueError(f'signal={self.signal!r} follows the distillation loss, but the '
                             'distiller has no distillation terms (distill_losses or terms)')
        distiller.register_buffer('group_weights',
                                  torch.full((len(self.groups),), 1.0 / len(self.groups)))
        if self.signal == 'standardised':
            distiller.register_buffer('group_signal_moments',
                                      torch.zeros(2, 3, dtype=torch.float64))

    def set_group_counts(self, counts: Mapping[str, int], source: str = 'the dataset') -> None:
        """Take ``n_g`` from ``source`` (:class:`~mmkd_plugins.hooks.GroupCountsHook`)."""
        self.counts.set(counts, source)

    def eg_signal(self, distiller: nn.Module, steps: GroupSteps) -> Tensor:
        """The signal ``s`` of this step's update, shape (G,) (0 for groups
        not seen); advances the running moments of ``'standardised'``."""
        if self.signal == 'standardised':
            z, moments = standardise(torch.stack([steps.detection, steps.distillation]),
                                     steps.seen, distiller.group_signal_moments, self.momentum)
            distiller.group_signal_moments.copy_(moments)
            signal = z.sum(0).to(steps.detection.dtype)
        else:
            signal = {'detection': steps.detection, 'distillation': steps.distillation,
                      'sum': steps.total}[self.signal]
        if self.adjustment > 0:
            signal = signal + group_adjustment(self.counts.tensor(signal), self.adjustment)
        return torch.where(steps.seen, signal, torch.zeros_like(signal))

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
        steps = self.split(distiller, batch)
        weights = distiller.group_weights
        signal = None
        if distiller.training:
            signal = self.eg_signal(distiller, steps)
            weights = exponentiated_gradient_step(weights, signal, steps.seen, self.step_size)
            distiller.group_weights.copy_(weights)
        out = steps.weighted(weights, 'loss_group_dro')
        for g, name in enumerate(self.groups):
            out[f'gq_{name}'] = weights[g].detach().clone()
            if signal is not None and steps.seen[g]:
                out[f'gsig_{name}'] = signal[g].detach().clone()
        out.update(steps.logs(self.groups))
        return out


_DRO_ARGS = tuple(p for p in inspect.signature(GroupDRO.__init__).parameters if p != 'self')


def _group_dro(kwargs: dict) -> GroupDRO:
    """A :class:`GroupDRO` from the arguments of a distiller config that
    belong to it (popped from ``kwargs``)."""
    return GroupDRO(**{k: kwargs.pop(k) for k in _DRO_ARGS if k in kwargs})


@MODELS.register_module()
class GroupDRODistiller(DetectionDistiller):
    """``DetectionDistiller(objective=GroupDRO(...))``, the registered name
    of the group-DRO configs.

    Args:
        **kwargs: The arguments of :class:`GroupDRO` (``groups``,
            ``step_size``, ``group_key``, ``signal``, ``adjustment``,
            ``group_counts``, ``momentum``) and of :class:`DetectionDistiller`.
    """

    def __init__(self, **kwargs):
        super().__init__(objective=_group_dro(kwargs), **kwargs)


@MODELS.register_module()
class GroupDROCrossViewDistiller(DetectionDistiller):
    """Group DRO over cross-view distillation, composed: the views and term
    of :class:`~mmkd_plugins.distillers.CrossViewDistiller` with the
    :class:`GroupDRO` objective. Each group's loss is the whole cross-view
    step (detection on both views, feature losses, within- and cross-view
    terms) on that group's images, both views split alike.

    Args:
        cross_view (dict): See :class:`~mmkd_plugins.distillers.CrossViewDistiller`.
        **kwargs: The arguments of :class:`GroupDRO` and of
            :class:`DetectionDistiller`.
    """

    def __init__(self, cross_view: dict = None, **kwargs):
        objective = _group_dro(kwargs)
        super().__init__(objective=objective, **cross_view_parts(cross_view), **kwargs)
