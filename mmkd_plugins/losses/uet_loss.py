"""UET: uncertainty-aware feature distillation around a host loss.

Yi et al., arXiv 2406.06999, 2024. The teacher's knowledge uncertainty is
estimated with Monte Carlo dropout (T stochastic teacher passes, run by the
distiller, which hands over their per-element variance; see
:mod:`mmkd_plugins.distillers.mc_dropout`), and the host loss (FGD, PKD, ...)
uses it. Formulas and the reasoning behind them: ``docs/uet.md``. Per level,
from the MC variance ``V`` (N, C, H, W):

* :func:`mc_uncertainty`: ``U = sqrt(mean_R V)``, the RMS MC standard
  deviation over the reduced dims R (channels for ``'spatial'``, H and W for
  ``'channel'``, none for ``'both'``);
* ``mode='add'`` (the paper's form), :func:`add_uncertainty`: the target is
  ``F + strength * U``, uncertainty knowledge added to the unchanged teacher
  feature as a residual;
* ``mode='weight'``, :func:`uncertainty_weights`: the target is ``F`` and
  each location's term is weighted by ``exp(-strength * minmax(U))``, scaled
  to mean 1 per image (the student copies less where the teacher is unsure).
"""
import inspect
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

from mmdet.registry import MODELS
from ..checks import (check_choice, check_mc_options, check_number, distill_loss_class,
                      fill_loss_args)
from .base import BaseDistillLoss, MultiLevel, as_levels, prepare_pairs

MODES = ('weight', 'add')
#: Modes that were removed, and why (quoted by the error).
REMOVED_MODES = {
    'residual': "it shrank the teacher towards 0 (an invention, not the paper's form); "
                "mode='add' is the paper's residual",
    'mean': "it replaced the teacher by the MC mean, while the paper keeps the original "
            'teacher',
}
_REDUCE_DIMS = {'spatial': (1, ), 'channel': (2, 3), 'both': ()}


def mc_uncertainty(var: Tensor, reduce: str = 'spatial') -> Tensor:
    """Uncertainty map of one level from its MC variance.

    Args:
        var (Tensor): (N, C, H, W) per-element MC variance, >= 0.
        reduce (str): ``'spatial'`` -> (N, 1, H, W), ``'channel'`` ->
            (N, C, 1, 1), ``'both'`` -> (N, C, H, W).

    Returns:
        Tensor: float32 ``U = sqrt(mean_R var)``, non-negative.
    """
    var = var.float()
    dims = _REDUCE_DIMS[reduce]
    if dims:
        var = var.mean(dim=dims, keepdim=True)
    return var.sqrt()


def minmax_per_image(u: Tensor) -> Tensor:
    """``(U - min) / (max - min)`` over each image's map, in [0, 1].

    A map without spread (uniform, or all zero) gives exactly 0 everywhere,
    never a 0/0. A spread below ``1e-5`` of the map's largest value counts
    as none: that is float rounding, and stretching it to [0, 1] would turn
    noise into weights.

    Args:
        u (Tensor): (N, ...).

    Returns:
        Tensor: Same shape.
    """
    flat = u.flatten(1)
    shape = (-1, *[1] * (u.dim() - 1))
    low = flat.amin(dim=1).reshape(shape)
    high = flat.amax(dim=1).reshape(shape)
    span = high - low
    span = torch.where(span > 1e-5 * high.abs(), span, torch.full_like(span, float('inf')))
    return (u - low) / span.clamp_min(torch.finfo(u.dtype).tiny)


def uncertainty_weights(u: Tensor, strength: float) -> Tensor:
    """Weights that decrease with the uncertainty, mean 1 per image.

    ``w = exp(-strength * minmax(U))``, then ``w / mean(w)`` over each
    image's map. The most certain location gets ``exp(0)`` before scaling,
    so ``max(w) / min(w) <= exp(strength)`` and ``mean(w) >= exp(-strength)``
    (no division by a small number). Uniform U gives ones, exactly.

    Args:
        u (Tensor): (N, ...) uncertainty, see :func:`mc_uncertainty`.
        strength (float): >= 0; 0 gives ones.

    Returns:
        Tensor: Same shape as ``u``.
    """
    w = torch.exp(-strength * minmax_per_image(u))
    return w / w.flatten(1).mean(dim=1).reshape(-1, *[1] * (u.dim() - 1))


def add_uncertainty(teacher: Tensor, u: Tensor, strength: float) -> Tensor:
    """The paper's target: the teacher feature plus its uncertainty as a
    residual, ``F + strength * U``.

    ``g(U) = strength * U`` with U the MC standard deviation, in the
    feature's own units (so ``strength`` does not depend on the feature
    scale). Zero uncertainty or zero strength give ``F`` exactly.

    Args:
        teacher (Tensor): (N, C, H, W).
        u (Tensor): Uncertainty broadcastable to ``teacher``.
        strength (float): >= 0.

    Returns:
        Tensor: (N, C, H, W).
    """
    return teacher + strength * u


def check_variance(var: MultiLevel, teacher: Sequence[Tensor], same_channels: bool,
                   same_size: bool) -> Tuple[Tensor, ...]:
    """Check the MC variances against the teacher levels; detach, float32.

    Args:
        var (Tensor | Sequence[Tensor]): One (N, C', H', W') per level.
        teacher (Sequence[Tensor]): The checked (N, C, H, W) teacher levels.
        same_channels (bool): Whether C' must equal C (variance of the
            distilled feature) or may differ (head placement).
        same_size (bool): Whether (H', W') must equal (H, W) or may be
            smaller (passes at a lower resolution).

    Returns:
        tuple[Tensor]: The variances, detached float32.
    """
    if var is None:
        raise ValueError('UncertaintyAwareLoss needs teacher_var (the variance of the '
                         "distiller's mc_dropout passes), got None")
    levels = as_levels(var, 'teacher_var')
    if len(levels) != len(teacher):
        raise ValueError(f'teacher_var has {len(levels)} levels but the '
                         f'features have {len(teacher)}')
    for i, (v, t) in enumerate(zip(levels, teacher)):
        ok = (v.dim() == 4 and v.shape[0] == t.shape[0] and
              (v.shape[1] == t.shape[1] or not same_channels) and
              (v.shape[2:] == t.shape[2:] if same_size else
               v.shape[2] <= t.shape[2] and v.shape[3] <= t.shape[3]))
        if not ok:
            raise ValueError(f'level {i}: teacher_var {tuple(v.shape)} does not fit the '
                             f'teacher {tuple(t.shape)}; expected (N, C, H, W)')
    return tuple(v.detach().float() for v in levels)


def fit_to(u: Tensor, feat: Tensor) -> Tensor:
    """Bilinearly upsample a spatial uncertainty map to ``feat``'s H and W
    (a no-op at equal size and for channel maps); stays non-negative."""
    if u.shape[-2:] == feat.shape[-2:] or u.shape[-2:] == (1, 1):
        return u
    return F.interpolate(u, size=feat.shape[-2:], mode='bilinear', align_corners=False)


@MODELS.register_module()
class UncertaintyAwareLoss(BaseDistillLoss):
    """Uncertainty-aware transfer (UET) around a host distillation loss.

    Yi et al., arXiv 2406.06999, 2024 (see ``docs/uet.md``). Use it in a
    ``distill_losses`` spec with ``mc_dropout``; the distiller then calls
    ``loss(student, teacher, data_samples, teacher_var=var)`` with the
    per-element MC variance of each level, from which U is computed
    (:func:`mc_uncertainty`). Modes:

    * ``'add'``: ``host(S, F + strength * U)`` (:func:`add_uncertainty`), the
      paper's residual form: the original teacher stays in the target, with
      its uncertainty added.
    * ``'weight'``: ``host(S, F, weights=w)`` with
      :func:`uncertainty_weights` (mean 1 per image, so the loss keeps the
      host's scale; uniform U gives the host loss exactly). Where U is large
      the student copies less; ``docs/uet.md`` measures where that is.

    Args:
        host (dict): Config of the host loss, a :class:`BaseDistillLoss`
            that takes ``weights`` (e.g. ``dict(type='FGDLoss', ...)``).
        mode (str): ``'weight'`` or ``'add'``. Default ``'weight'``.
        strength (float): >= 0. ``'weight'``: the weights span at most a
            factor ``exp(strength)``; ``'add'``: MC standard deviations
            added. Default 1.0.
        reduce (str): Shape of U, ``'spatial'`` (N, 1, H, W), ``'channel'``
            (N, C, 1, 1) or ``'both'``. The distiller fills it from
            ``mc_dropout.reduce``. Default ``'spatial'``.
        placement (str): Where the MC dropout sits (``mc_dropout.placement``,
            filled by the distiller); ``'head'`` variances are of the head's
            probabilities and allow ``mode='weight'`` only. Default
            ``'stage'``.
        scale (float): Resolution of the MC passes (``mc_dropout.scale``,
            filled by the distiller). Below 1 the variances are smaller than
            the teacher's levels and U is upsampled bilinearly. Default 1.0.
        in_channels (int, optional): Passed on to the host if it takes it
            and its config does not set it (the distiller fills it).
        num_levels (int, optional): Likewise.
        loss_weight (float): Multiplier of the host's loss. Default 1.0.
    """
    accepts_teacher_var = True

    def __init__(self,
                 host: dict,
                 mode: str = 'weight',
                 strength: float = 1.0,
                 reduce: str = 'spatial',
                 placement: str = 'stage',
                 scale: float = 1.0,
                 in_channels: Optional[int] = None,
                 num_levels: Optional[int] = None,
                 loss_weight: float = 1.0) -> None:
        super().__init__(loss_weight=loss_weight)
        if mode in REMOVED_MODES:
            raise ValueError(f'mode={mode!r} was removed: {REMOVED_MODES[mode]} '
                             f'(docs/uet.md). Use one of {MODES}')
        self.mode = check_choice('mode', mode, MODES)
        self.scale = check_mc_options(placement, reduce, scale)
        self.reduce, self.placement = reduce, placement
        if placement == 'head' and mode != 'weight':
            raise ValueError(
                f"placement='head' gives the variance of the head's probabilities, not of "
                f"the distilled feature: it needs mode='weight', got mode={mode!r}")
        self.strength = check_number('strength', strength)
        self.host = self._build_host(host, in_channels=in_channels, num_levels=num_levels)

    @staticmethod
    def _build_host(cfg, **probed) -> BaseDistillLoss:
        cls = distill_loss_class(cfg, 'host')
        if getattr(cls, 'accepts_teacher_var', False):
            raise TypeError(f'host.type: {cls.__name__} takes the MC variance itself; '
                            'the host must be a plain feature loss')
        if 'weights' not in inspect.signature(cls.forward).parameters:
            raise TypeError(f'host.type: {cls.__name__}.forward takes no `weights`, '
                            'so it cannot be weighted by uncertainty')
        return MODELS.build(fill_loss_args(cls, dict(cfg), 'host', probed, 'the features have'))

    def forward(self,
                student: MultiLevel,
                teacher: MultiLevel,
                data_samples: Optional[list] = None,
                weights: Optional[MultiLevel] = None,
                teacher_var: Optional[MultiLevel] = None) -> Tensor:
        """The host loss with uncertainty-aware targets or weights.

        Args:
            student (Tensor | Sequence[Tensor]): (N, C, H, W) per level.
            teacher (Tensor | Sequence[Tensor]): The deterministic teacher
                features, same shapes.
            data_samples (list[DetDataSample], optional): Passed to the host.
            weights (Tensor | Sequence[Tensor], optional): Extra weights per
                level, passed to the host (multiplying the uncertainty
                weights in ``'weight'`` mode).
            teacher_var (Tensor | Sequence[Tensor]): (N, C, H', W') per level,
                the per-element MC variance (head placement: the head's
                channels; ``scale < 1``: smaller H', W').

        Returns:
            Tensor: Scalar float32 ``loss_weight * host(...)``.
        """
        stu, tea = prepare_pairs(student, teacher)
        var = check_variance(teacher_var, tea, self.placement != 'head', self.scale == 1)
        extra = list(as_levels(weights, 'weights')) if weights is not None else None
        u = [fit_to(mc_uncertainty(v, self.reduce), t) for v, t in zip(var, tea)]
        if self.mode == 'add':
            target = tuple(add_uncertainty(t, ui, self.strength) for t, ui in zip(tea, u))
            level_weights = extra
        else:
            target = tea
            level_weights = [uncertainty_weights(ui, self.strength) for ui in u]
            if extra is not None:
                level_weights = [w * e.float() for w, e in zip(level_weights, extra)]
        loss = self.host(stu, target, data_samples=data_samples,
                         weights=None if level_weights is None else tuple(level_weights))
        return self.loss_weight * loss

    def extra_repr(self) -> str:
        return (f'mode={self.mode!r}, strength={self.strength}, reduce={self.reduce!r}, '
                f'placement={self.placement!r}, scale={self.scale}, '
                f'{super().extra_repr()}')
