"""UET: uncertainty-aware feature distillation around a host loss.

Yi et al., arXiv 2406.06999, 2024. The teacher's knowledge uncertainty is estimated with
Monte Carlo dropout (T stochastic teacher passes, made by the distiller, see
:mod:`mmkd_plugins.distillers.mc_dropout`), and the host loss (FGD, PKD, ...)
transfers less where the teacher is unsure. Formulas and the reasoning
behind them: ``docs/uet.md``. Per level, from samples ``S`` (T, N, C, H, W):

* :func:`mc_uncertainty`: ``U = sqrt(mean_R var_T(S))``, the RMS MC standard
  deviation over the reduced dims R (channels for ``'spatial'``, H and W for
  ``'channel'``, none for ``'both'``);
* :func:`relative_uncertainty` (``uncertainty='relative'``): ``U / RMS_R(F)``,
  the MC standard deviation as a fraction of the teacher activation;
* :func:`uncertainty_weights`: ``w = exp(-strength * minmax(U))`` scaled to
  mean 1 per image (``'weight'`` and ``'mean'`` modes);
* :func:`shrink_target`: ``F - sign(F) * min(|F|, strength * U)``, the
  teacher feature soft-thresholded by its uncertainty (``'residual'``).
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

MODES = ('weight', 'residual', 'mean')
UNCERTAINTIES = ('absolute', 'relative')
_REDUCE_DIMS = {'spatial': (1, ), 'channel': (2, 3), 'both': ()}


def mc_uncertainty(samples: Tensor, reduce: str = 'spatial') -> Tensor:
    """Uncertainty map of one level from its MC samples.

    ``U = sqrt(mean_R var_T(S))`` with the unbiased variance over the T
    passes, in float32. The variance is taken of the deviations from the
    first pass (the "shifted data" formula), so it is exactly 0 where the
    passes agree (e.g. ``p = 0``), with no rounding residue of a mean.

    Args:
        samples (Tensor): (T, N, C, H, W), T >= 2.
        reduce (str): ``'spatial'`` -> (N, 1, H, W), ``'channel'`` ->
            (N, C, 1, 1), ``'both'`` -> (N, C, H, W).

    Returns:
        Tensor: float32 U, non-negative.
    """
    samples = samples.float()
    passes, first = samples.shape[0], samples[0]
    s1, s2 = torch.zeros_like(first), torch.zeros_like(first)
    # A loop over the T passes: ~10x faster on the CPU than reductions over
    # a (T, ...) tensor, and no (T, ...) temporary.
    for sample in samples[1:]:
        dev = sample - first
        s1.add_(dev)
        s2.addcmul_(dev, dev)
    var = (s2 - s1 * s1 / passes).clamp_min_(0) / (passes - 1)
    dims = _REDUCE_DIMS[reduce]
    if dims:
        var = var.mean(dim=dims, keepdim=True)
    return var.sqrt()


def minmax_per_image(u: Tensor) -> Tensor:
    """``(U - min) / (max - min)`` over each image's map, in [0, 1].

    A map without spread (uniform, or all zero) gives exactly 0 everywhere,
    never a 0/0. A spread below ``1e-5`` of the map's largest value counts
    as none: that is float rounding (e.g. of a ratio that is constant in
    exact arithmetic), and stretching it to [0, 1] would turn noise into
    weights.

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


def relative_uncertainty(u: Tensor, feat: Tensor, reduce: str = 'spatial',
                         floor: float = 0.01) -> Tensor:
    """``U / RMS_R(F)``: the MC standard deviation as a fraction of the
    teacher activation it belongs to (a coefficient of variation).

    Dropout noise is multiplicative: the spread of a stage's output grows
    with the size of its inputs, so absolute ``U`` is largest where the
    features are strong (on the objects, for a detector) and weighting by it
    copies the objects least. The ratio removes that scale. ``R`` are the
    dims ``U`` was reduced over (see :func:`mc_uncertainty`); the RMS is
    floored at ``floor`` times its image mean so that near-zero activations
    do not blow the ratio up (an all-zero feature gives 0).

    Args:
        u (Tensor): (N, 1, H, W), (N, C, 1, 1) or (N, C, H, W) uncertainty at
            ``feat``'s resolution (see :func:`fit_to`).
        feat (Tensor): (N, C, H, W) teacher feature.
        reduce (str): The reduction ``u`` was computed with.
        floor (float): Relative floor of the RMS. Default 0.01.

    Returns:
        Tensor: Same shape as ``u``, float32, finite.
    """
    f = feat.float()
    dims = _REDUCE_DIMS[reduce]
    rms = (f * f).mean(dim=dims, keepdim=True).sqrt() if dims else f.abs()
    mean = rms.flatten(1).mean(dim=1).reshape(-1, *[1] * (rms.dim() - 1))
    rms = torch.maximum(rms, floor * mean).clamp_min(torch.finfo(torch.float32).tiny)
    return u.float() / rms


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


def shrink_target(teacher: Tensor, u: Tensor, strength: float) -> Tensor:
    """The teacher feature soft-thresholded by its uncertainty.

    ``T' = F + r`` with the residual ``r = -sign(F) * min(|F|, strength*U)``:
    every activation moves towards 0 by ``strength`` MC standard deviations,
    and one within that band becomes 0. Zero uncertainty gives ``F``
    exactly.

    Args:
        teacher (Tensor): (N, C, H, W).
        u (Tensor): Uncertainty broadcastable to ``teacher``.
        strength (float): >= 0, in units of U.

    Returns:
        Tensor: (N, C, H, W).
    """
    return teacher - teacher.sign() * torch.minimum(teacher.abs(), strength * u)


def check_samples(samples: MultiLevel, teacher: Sequence[Tensor], same_channels: bool,
                  same_size: bool) -> Tuple[Tensor, ...]:
    """Check the MC samples against the teacher levels; detach, float32.

    Args:
        samples (Tensor | Sequence[Tensor]): One (T, N, C', H', W') per level.
        teacher (Sequence[Tensor]): The checked (N, C, H, W) teacher levels.
        same_channels (bool): Whether C' must equal C (samples of the
            distilled feature) or may differ (head placement).
        same_size (bool): Whether (H', W') must equal (H, W) or may be
            smaller (passes at a lower resolution).

    Returns:
        tuple[Tensor]: The samples, detached float32.
    """
    if samples is None:
        raise ValueError('UncertaintyAwareLoss needs teacher_samples (the '
                         "distiller's mc_dropout passes), got None")
    levels = as_levels(samples, 'teacher_samples')
    if len(levels) != len(teacher):
        raise ValueError(f'teacher_samples has {len(levels)} levels but the '
                         f'features have {len(teacher)}')
    for i, (s, t) in enumerate(zip(levels, teacher)):
        ok = (s.dim() == 5 and s.shape[0] >= 2 and s.shape[1] == t.shape[0] and
              (s.shape[2] == t.shape[1] or not same_channels) and
              (s.shape[3:] == t.shape[2:] if same_size else
               s.shape[3] <= t.shape[2] and s.shape[4] <= t.shape[3]))
        if not ok:
            raise ValueError(f'level {i}: teacher_samples {tuple(s.shape)} do not '
                             f'fit the teacher {tuple(t.shape)}; expected '
                             '(T >= 2, N, C, H, W)')
    return tuple(s.detach().float() for s in levels)


def fit_to(u: Tensor, feat: Tensor) -> Tensor:
    """Bilinearly upsample a spatial uncertainty map to ``feat``'s H and W
    (a no-op at equal size and for channel maps); stays non-negative."""
    if u.shape[-2:] == feat.shape[-2:] or u.shape[-2:] == (1, 1):
        return u
    return F.interpolate(u, size=feat.shape[-2:], mode='bilinear', align_corners=False)


@MODELS.register_module()
class UncertaintyAwareLoss(BaseDistillLoss):
    """Uncertainty-aware transfer (UET) around a host distillation loss.

    Yi et al., arXiv 2406.06999, 2024 (see ``docs/uet.md``). Use it in a ``distill_losses`` spec with
    ``mc_dropout``; the distiller then calls
    ``loss(student, teacher, data_samples, teacher_samples=samples)`` with
    the teacher's T stochastic versions of each level, from which U is
    computed (:func:`mc_uncertainty`). Modes:

    * ``'weight'``: ``host(S, F, weights=w)`` with
      :func:`uncertainty_weights` (mean 1 per image, so the loss keeps the
      host's scale; uniform U gives the host loss exactly).
    * ``'residual'``: ``host(S, shrink_target(F, U))``: the teacher feature
      stays the base of the target, its uncertain part is removed.
    * ``'mean'``: ``host(S, mean_T(samples), weights=w)``, the MC ensemble
      mean as target; ``strength=0`` makes ``w`` all ones.

    Args:
        host (dict): Config of the host loss, a :class:`BaseDistillLoss`
            that takes ``weights`` (e.g. ``dict(type='FGDLoss', ...)``).
        mode (str): ``'weight'``, ``'residual'`` or ``'mean'``. Default
            ``'weight'``.
        strength (float): >= 0. ``'weight'``/``'mean'``: the weights span at
            most a factor ``exp(strength)``; ``'residual'``: the threshold in
            MC standard deviations. Default 1.0.
        uncertainty (str): What the weights of ``'weight'``/``'mean'`` are
            computed from: ``'absolute'``, the MC standard deviation U, or
            ``'relative'``, U as a fraction of the teacher activation
            (:func:`relative_uncertainty`). ``'residual'`` thresholds in
            absolute units and takes ``'absolute'`` only. Default
            ``'absolute'``.
        reduce (str): Shape of U, ``'spatial'`` (N, 1, H, W), ``'channel'``
            (N, C, 1, 1) or ``'both'``. The distiller fills it from
            ``mc_dropout.reduce``. Default ``'spatial'``.
        placement (str): Where the MC dropout sits (``mc_dropout.placement``,
            filled by the distiller); ``'head'`` samples are head outputs
            and allow ``mode='weight'`` only. Default ``'backbone'``.
        scale (float): Resolution of the MC passes (``mc_dropout.scale``,
            filled by the distiller). Below 1 the samples are smaller than
            the teacher's levels and U is upsampled bilinearly; ``'mean'``
            needs 1 (an upsampled mean would be a blurred target).
            Default 1.0.
        in_channels (int, optional): Passed on to the host if it takes it
            and its config does not set it (the distiller fills it).
        num_levels (int, optional): Likewise.
        loss_weight (float): Multiplier of the host's loss. Default 1.0.
    """
    accepts_teacher_samples = True

    def __init__(self,
                 host: dict,
                 mode: str = 'weight',
                 strength: float = 1.0,
                 uncertainty: str = 'absolute',
                 reduce: str = 'spatial',
                 placement: str = 'backbone',
                 scale: float = 1.0,
                 in_channels: Optional[int] = None,
                 num_levels: Optional[int] = None,
                 loss_weight: float = 1.0) -> None:
        super().__init__(loss_weight=loss_weight)
        self.mode = check_choice('mode', mode, MODES)
        self.uncertainty = check_choice('uncertainty', uncertainty, UNCERTAINTIES)
        self.scale = check_mc_options(placement, reduce, scale)
        self.reduce, self.placement = reduce, placement
        if placement == 'head' and mode != 'weight':
            raise ValueError(
                f"placement='head' gives samples of the head's outputs, not of the "
                f"distilled feature: it needs mode='weight', got mode={mode!r}")
        if uncertainty == 'relative' and (mode == 'residual' or placement == 'head'):
            raise ValueError(
                "uncertainty='relative' divides U by the distilled teacher feature: it "
                "needs mode='weight' or 'mean' and samples of that feature (placement "
                f"other than 'head'), got mode={mode!r}, placement={placement!r}")
        if mode == 'mean' and self.scale < 1:
            raise ValueError(f"mode='mean' needs samples at the teacher's resolution "
                             f'(scale=1), got scale={scale}')
        self.strength = check_number('strength', strength)
        self.host = self._build_host(host, in_channels=in_channels, num_levels=num_levels)

    @staticmethod
    def _build_host(cfg, **probed) -> BaseDistillLoss:
        cls = distill_loss_class(cfg, 'host')
        if getattr(cls, 'accepts_teacher_samples', False):
            raise TypeError(f'host.type: {cls.__name__} takes teacher samples itself; '
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
                teacher_samples: Optional[MultiLevel] = None) -> Tensor:
        """The host loss with uncertainty-aware weights or targets.

        Args:
            student (Tensor | Sequence[Tensor]): (N, C, H, W) per level.
            teacher (Tensor | Sequence[Tensor]): The deterministic teacher
                features, same shapes.
            data_samples (list[DetDataSample], optional): Passed to the host.
            weights (Tensor | Sequence[Tensor], optional): Extra weights per
                level; they multiply the uncertainty weights.
            teacher_samples (Tensor | Sequence[Tensor]): (T, N, C, H, W) per
                level (head placement: the head's channels).

        Returns:
            Tensor: Scalar float32 ``loss_weight * host(...)``.
        """
        stu, tea = prepare_pairs(student, teacher)
        samples = check_samples(teacher_samples, tea, self.placement != 'head',
                                self.scale == 1)
        extra = list(as_levels(weights, 'weights')) if weights is not None else None
        u = [fit_to(mc_uncertainty(s, self.reduce), t) for s, t in zip(samples, tea)]
        if self.uncertainty == 'relative':
            u = [relative_uncertainty(ui, t, self.reduce) for ui, t in zip(u, tea)]
        if self.mode == 'residual':
            target = [shrink_target(t, ui, self.strength) for t, ui in zip(tea, u)]
            level_weights = extra
        else:
            target = tea if self.mode == 'weight' else [s.mean(dim=0) for s in samples]
            level_weights = [uncertainty_weights(ui, self.strength) for ui in u]
            if extra is not None:
                level_weights = [w * e.float() for w, e in zip(level_weights, extra)]
        loss = self.host(stu, tuple(target), data_samples=data_samples,
                         weights=None if level_weights is None else tuple(level_weights))
        return self.loss_weight * loss

    def extra_repr(self) -> str:
        return (f'mode={self.mode!r}, strength={self.strength}, '
                f'uncertainty={self.uncertainty!r}, reduce={self.reduce!r}, '
                f'placement={self.placement!r}, scale={self.scale}, '
                f'{super().extra_repr()}')
