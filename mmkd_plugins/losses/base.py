"""The argument convention shared by every feature-distillation loss.

Every loss in this package is called the same way::

    loss = loss_module(student, teacher, data_samples=None, weights=None)

where ``student`` and ``teacher`` hold one ``(N, C, H, W)`` feature map per
FPN level. :class:`BaseDistillLoss` checks the inputs once, casts them to
float32, detaches the teacher and sums the per-level losses that a subclass
computes in :meth:`BaseDistillLoss.level_loss`.

What ``weights`` means, for every loss (enforced by
``tests/test_losses/test_loss_contract.py``): one non-negative tensor per
level, broadcastable to the level's (N, C, H, W), that *multiplies* each
element's term of the loss before the loss's own reduction, as ``weight`` does
in MMDetection's ``weight_reduce_loss``. So

* ``weights=None`` is all ones, and a weight of ones gives the same loss bit
  for bit;
* the loss is linear in the weights: ``L(w) = L(0) + sum(w * e)`` for the
  per-element terms ``e`` of the loss. ``L(0)`` holds the terms that compare
  whole maps rather than elements (FGD's attention and relation terms), which
  no weight reaches; for every other loss it is 0;
* nothing is renormalised: a constant weight ``k`` scales the weighted terms by
  ``k``. A caller that wants a weighted mean scales its weights itself (UET's
  uncertainty weights have mean 1 per image, so the loss keeps the host's
  scale).

Weights are how a wrapper down-weights locations or images without touching
the host loss (UET's uncertainty, and later a selection of web images).
Argument checks are shared with the rest of the package
(:mod:`mmkd_plugins.checks`).
"""
import contextlib
from typing import List, Optional, Sequence, Tuple, Union

import torch
from torch import Tensor, nn

from ..checks import check_number

#: A single feature map, or one feature map per level.
MultiLevel = Union[Tensor, Sequence[Tensor]]


# --------------------------------------------------------------------------
# Forward-argument checks
# --------------------------------------------------------------------------
def as_levels(feats: MultiLevel, name: str) -> Tuple[Tensor, ...]:
    """Turn a tensor or a sequence of tensors into a tuple of levels.

    Args:
        feats (Tensor | Sequence[Tensor]): One feature map, or one per level.
        name (str): ``'student'``, ``'teacher'`` or ``'weights'``, for
            error messages.

    Returns:
        tuple[Tensor]: The levels, unchanged.

    Raises:
        TypeError: If ``feats`` or one of its items is not a tensor.
    """
    if isinstance(feats, Tensor):
        return (feats, )
    if not isinstance(feats, (list, tuple)):
        raise TypeError(f'{name} must be a Tensor or a tuple/list of '
                        f'Tensors, got {type(feats).__name__}')
    for i, feat in enumerate(feats):
        if not isinstance(feat, Tensor):
            raise TypeError(f'level {i}: {name} must be a Tensor, '
                            f'got {type(feat).__name__}')
    return tuple(feats)


def _shape(t: Tensor) -> tuple:
    return tuple(t.shape)


def prepare_pairs(student: MultiLevel, teacher: MultiLevel
                  ) -> Tuple[Tuple[Tensor, ...], Tuple[Tensor, ...]]:
    """Check student/teacher levels pairwise and bring them to float32.

    Args:
        student (Tensor | Sequence[Tensor]): Student features, each
            (N, C, H, W).
        teacher (Tensor | Sequence[Tensor]): Teacher features, same shapes.

    Returns:
        tuple: ``(student_levels, teacher_levels)``, each a tuple of float32
        (N, C, H, W) tensors; the teacher levels are detached, so no gradient
        can ever reach the teacher.

    Raises:
        ValueError: On an empty tuple, a differing number of levels, a
            non-4D tensor, a shape mismatch (the message names the level and
            both shapes), an empty batch or an empty feature map.
    """
    stu = as_levels(student, 'student')
    tea = as_levels(teacher, 'teacher')
    if len(stu) == 0 or len(tea) == 0:
        raise ValueError('student and teacher must each hold at least one '
                         f'level, got {len(stu)} and {len(tea)}')
    if len(stu) != len(tea):
        raise ValueError(f'number of levels differs: student has {len(stu)}, '
                         f'teacher has {len(tea)}')
    for i, (s, t) in enumerate(zip(stu, tea)):
        if s.dim() != 4:
            raise ValueError(f'level {i}: expected (N, C, H, W) features, '
                             f'got student shape {_shape(s)}')
        if s.shape != t.shape:
            raise ValueError(f'level {i}: student {_shape(s)} vs '
                             f'teacher {_shape(t)}')
        if s.shape[0] == 0:
            raise ValueError(f'empty batch: level {i} has shape {_shape(s)}')
        if s.numel() == 0:
            raise ValueError(f'level {i}: empty feature map {_shape(s)}')
    # float() is a no-op for float32 inputs, so nothing is copied outside AMP.
    return (tuple(s.float() for s in stu),
            tuple(t.detach().float() for t in tea))


def prepare_weights(weights: Optional[MultiLevel],
                    feats: Sequence[Tensor]) -> List[Optional[Tensor]]:
    """Check optional per-level weights against the feature shapes.

    Weights are not detached: a wrapper that learns them (e.g. a predicted
    uncertainty) needs their gradient.

    Args:
        weights (Tensor | Sequence[Tensor] | None): One non-negative tensor
            per level, each broadcastable to that level's (N, C, H, W), e.g.
            (N, 1, H, W), (N, C, 1, 1) or (N, C, H, W). ``None`` means all
            ones.
        feats (Sequence[Tensor]): The (already checked) feature levels.

    Returns:
        list[Tensor | None]: One float32 weight (or ``None``) per level.

    Raises:
        ValueError: If the number of levels differs, a weight does not
            broadcast to its level's shape or has a negative entry (the
            message names the level).
    """
    if weights is None:
        return [None] * len(feats)
    levels = as_levels(weights, 'weights')
    if len(levels) != len(feats):
        raise ValueError(f'weights has {len(levels)} levels but the features '
                         f'have {len(feats)}')
    out = []
    for i, (w, f) in enumerate(zip(levels, feats)):
        try:
            broadcast = torch.broadcast_shapes(w.shape, f.shape)
        except RuntimeError:
            broadcast = None
        if broadcast != f.shape:
            raise ValueError(f'level {i}: weights shape {_shape(w)} is not '
                             f'broadcastable to features {_shape(f)}')
        w = w.float()
        if bool((w < 0).any()):
            raise ValueError(f'level {i}: weights must be non-negative')
        out.append(w)
    return out


# --------------------------------------------------------------------------
# Reductions shared by several losses
# --------------------------------------------------------------------------
def weighted_mean(elementwise: Tensor, weight: Optional[Tensor]) -> Tensor:
    """Mean over the elements of ``weight * elementwise``.

    The reduction of an elementwise loss under the package's meaning of
    ``weights`` (module docstring): the weight multiplies, the mean divides
    by the number of elements, whatever the weight. ``None`` and a weight of
    ones give the plain mean bit for bit.

    Args:
        elementwise (Tensor): Per-element loss, (N, C, H, W).
        weight (Tensor | None): Non-negative, broadcastable to
            ``elementwise``.

    Returns:
        Tensor: Scalar.
    """
    if weight is not None:
        elementwise = weight * elementwise
    return elementwise.sum() / elementwise.numel()


def _autocast_disabled(device: torch.device):
    """Context in which autocast is off for ``device`` (if it supports it)."""
    try:
        return torch.autocast(device_type=device.type, enabled=False)
    except (RuntimeError, ValueError):
        # Device types without autocast support have nothing to disable.
        return contextlib.nullcontext()


# --------------------------------------------------------------------------
# Base class
# --------------------------------------------------------------------------
class BaseDistillLoss(nn.Module):
    """Base class fixing the call convention of feature-distillation losses.

    Subclasses implement :meth:`level_loss` for one level and may override
    :meth:`check_inputs` for extra requirements (e.g. ground truth). The
    whole forward runs with autocast disabled, so learnable parts of a loss
    (FGD's global-context blocks) also compute in float32 under AMP.

    Args:
        loss_weight (float): Multiplier of the summed per-level losses.
            Must be >= 0. Defaults to 1.0.
    """

    def __init__(self, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.loss_weight = check_number('loss_weight', loss_weight)

    def forward(self,
                student: MultiLevel,
                teacher: MultiLevel,
                data_samples: Optional[list] = None,
                weights: Optional[MultiLevel] = None) -> Tensor:
        """Compute the distillation loss summed over levels.

        Args:
            student (Tensor | Sequence[Tensor]): Student features, one
                (N, C, H, W) tensor per level (channel-adapted already).
            teacher (Tensor | Sequence[Tensor]): Teacher features, same
                shapes; treated as constants.
            data_samples (list[DetDataSample], optional): Length N; only
                losses that use ground truth read it.
            weights (Tensor | Sequence[Tensor], optional): One non-negative
                tensor per level broadcastable to (N, C, H, W) that
                multiplies each element's term (module docstring); ``None``
                means all ones.

        Returns:
            Tensor: Scalar float32 ``loss_weight * sum_l level_loss_l``.
        """
        stu, tea = prepare_pairs(student, teacher)
        level_weights = prepare_weights(weights, stu)
        self.check_inputs(stu, data_samples)
        with _autocast_disabled(stu[0].device):
            losses = [
                self.level_loss(i, s, t, w, data_samples)
                for i, (s, t, w) in enumerate(zip(stu, tea, level_weights))
            ]
        return self.loss_weight * torch.stack(losses).sum()

    def check_inputs(self, student: Tuple[Tensor, ...],
                     data_samples: Optional[list]) -> None:
        """Hook for loss-specific input checks; raise ValueError on misuse.

        Args:
            student (tuple[Tensor]): The checked float32 student levels.
            data_samples (list[DetDataSample] | None): As given to forward.
        """

    def level_loss(self, level: int, student: Tensor, teacher: Tensor,
                   weight: Optional[Tensor],
                   data_samples: Optional[list]) -> Tensor:
        """Loss of one level, before ``loss_weight``.

        Args:
            level (int): Level index (selects per-level modules).
            student (Tensor): float32 (N, C, H, W).
            teacher (Tensor): float32 (N, C, H, W), detached.
            weight (Tensor | None): float32, broadcastable to (N, C, H, W).
            data_samples (list[DetDataSample] | None): As given to forward.

        Returns:
            Tensor: Scalar.
        """
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f'loss_weight={self.loss_weight}'
