"""Monte Carlo dropout on the teacher: T stochastic passes of one teacher
stage, batched into a single forward call.

Used by UET (Yi et al., arXiv 2406.06999, 2024; see ``docs/uet.md``). A distillation spec with
``mc_dropout=dict(p, passes, placement, reduce, scale)`` gives its
:class:`~mmkd_plugins.distillers.FeatureTerm` a teacher-side provider,
:class:`MCDropout`, which hands the term's loss the teacher's ``passes``
stochastic versions of the distilled neck levels.

Why the dropout sits *before* a teacher stage: dropout applied to the
distilled map itself has variance ``F^2 p / (1 - p)`` at every element, a
fixed function of the feature that carries no information about the
teacher. Applied to a stage's *input*, the spread of the stage's output
depends on the stage's weights and on how the dropped inputs combine (large
contributions that cancel give a large spread on a small output), which is
the teacher's own sensitivity. Placements, relative to the distilled neck:

* ``'backbone'``: dropout on the backbone outputs, then the neck runs once
  on the ``T*N`` repeated, dropped maps. The backbone runs once per step.
* ``'neck'``: dropout inside the neck, on the outputs of its lateral convs
  (FPN-like necks with ``lateral_convs``); forward hooks apply it during the
  MC call only.
* ``'head'``: dropout on the neck outputs, then the dense head (its conv
  towers and predictors) runs on ``T*N``. The samples are the head's
  classification probabilities (sigmoid of its first output), which have
  the spatial size of the neck levels but not their channels: they can
  only weight the neck-level loss spatially (``reduce='spatial'``).

Samples are ``(T, N, C, H, W)`` per level; the batched tensor is laid out
pass-major (row ``t * N + n`` is pass ``t`` of image ``n``), see
:func:`repeat_passes` and :func:`split_passes`.

Cost: the repeated stage runs on ``T*N`` images. ``scale < 1`` runs the
passes on the stage's inputs average-pooled to ``ceil(scale * size)``, which
divides their cost by about ``1 / scale^2``; the samples then have the lower
resolution, and the loss upsamples the uncertainty map it derives from them.
"""
import inspect
import math
import numbers
from contextlib import contextmanager
from typing import Callable, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..checks import PLACEMENTS, check_mc_options
from .detectors import dense_head

MC_DEFAULTS = dict(p=0.1, passes=8, placement='backbone', reduce='spatial', scale=1.0)


def parse_mc_dropout(cfg, key: str) -> dict:
    """Check an ``mc_dropout`` spec and fill in the defaults.

    Args:
        cfg (dict): Any of ``p`` (dropout rate in [0, 1), default 0.1),
            ``passes`` (T >= 2, default 8), ``placement`` (one of
            :data:`~mmkd_plugins.checks.PLACEMENTS`, default ``'backbone'``), ``reduce`` (one
            of :data:`~mmkd_plugins.checks.REDUCES`, default ``'spatial'``) and ``scale``
            (resolution of the passes relative to the teacher's, in (0, 1],
            default 1).
        key (str): Config key of the spec, e.g.
            ``'distill_losses.loss_uet.mc_dropout'``, for error messages.

    Returns:
        dict: All five keys.

    Raises:
        TypeError | ValueError: naming ``<key>.<entry>``.
    """
    if not isinstance(cfg, dict):
        raise TypeError(f'{key} must be a dict with keys {list(MC_DEFAULTS)}, '
                        f'got {type(cfg).__name__}')
    unknown = sorted(set(cfg) - set(MC_DEFAULTS))
    if unknown:
        raise ValueError(f'{key}: unknown key(s) {unknown}; allowed: {list(MC_DEFAULTS)}')
    mc = {**MC_DEFAULTS, **cfg}
    p = mc['p']
    if isinstance(p, bool) or not isinstance(p, numbers.Real) or not 0 <= p < 1:
        raise ValueError(f'{key}.p must be a dropout rate in [0, 1), got {p!r}')
    passes = mc['passes']
    if isinstance(passes, bool) or not isinstance(passes, numbers.Integral) or passes < 2:
        raise ValueError(f'{key}.passes must be an int >= 2 (a variance needs two '
                         f'samples), got {passes!r}')
    scale = check_mc_options(mc['placement'], mc['reduce'], mc['scale'], f'{key}.')
    return dict(mc, p=float(p), passes=int(passes), scale=float(scale))


def check_placement(detector: nn.Module, placement: str, key: str) -> None:
    """Fail at build time when the teacher cannot host ``placement``.

    Args:
        detector (nn.Module): The teacher.
        placement (str): One of :data:`PLACEMENTS`.
        key (str): The ``...mc_dropout`` config key, for messages.
    """
    if not getattr(detector, 'with_neck', False):
        raise ValueError(f'{key}: the teacher has no neck; MC dropout samples the '
                         'neck levels')
    if placement == 'neck' and not isinstance(
            getattr(detector.neck, 'lateral_convs', None), nn.ModuleList):
        raise ValueError(
            f"{key}.placement='neck' needs an FPN-like neck with lateral_convs; "
            f'the teacher has a {type(detector.neck).__name__}. Use '
            "placement='backbone'")
    if placement == 'head':
        head = dense_head(detector)
        if head is None:
            raise ValueError(f"{key}.placement='head' needs a dense head (bbox_head "
                             'of a one-stage detector or rpn_head)')
        if not getattr(head, 'use_sigmoid_cls', True):
            raise ValueError(f"{key}.placement='head' needs a sigmoid classifier; "
                             f'{type(head).__name__} uses a softmax')


def repeat_passes(feat: Tensor, passes: int) -> Tensor:
    """(N, ...) -> (T*N, ...), pass-major: row ``t*N + n`` is image ``n``."""
    return feat.repeat(passes, *([1] * (feat.dim() - 1)))


def split_passes(feat: Tensor, passes: int) -> Tensor:
    """(T*N, C, H, W) -> (T, N, C, H, W), the inverse layout of
    :func:`repeat_passes`."""
    return feat.reshape(passes, feat.shape[0] // passes, *feat.shape[1:])


@contextmanager
def lateral_dropout(neck: nn.Module, p: float):
    """Inside the block, every ``neck.lateral_convs[i]`` output goes through
    ``F.dropout(x, p, training=True)``; the hooks are removed afterwards."""

    def hook(module, args, output):
        return F.dropout(output, p, training=True) if p > 0 else output

    handles = [m.register_forward_hook(hook) for m in neck.lateral_convs]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def pool(feat: Tensor, scale: float) -> Tensor:
    """Average-pool (N, C, H, W) to ``ceil(scale * H) x ceil(scale * W)``
    (ceil, like a stride-2 conv, so halved pyramid levels stay halved)."""
    if scale == 1:
        return feat
    return F.adaptive_avg_pool2d(feat, [math.ceil(scale * n) for n in feat.shape[-2:]])


def stochastic_copies(feat: Tensor, passes: int, p: float) -> Tensor:
    """(N, ...) -> (T*N, ...): ``passes`` copies, pass-major, each with its
    own ``F.dropout(x, p, training=True)``."""
    copies = repeat_passes(feat, passes)
    return F.dropout(copies, p, training=True) if p > 0 else copies


def _neck_inputs(neck: nn.Module, feats: Sequence[Tensor], passes: int, p: float,
                 scale: float) -> list:
    # An FPN reads backbone levels [start_level, backbone_end_level) only; the
    # others are passed on untouched (they are never read), which spares
    # e.g. the stride-4 map that RetinaNet's FPN skips.
    first = getattr(neck, 'start_level', 0)
    end = getattr(neck, 'backbone_end_level', len(feats))
    return [stochastic_copies(pool(x, scale), passes, p) if first <= i < end else x
            for i, x in enumerate(feats)]


@torch.no_grad()
def mc_teacher_samples(detector: nn.Module, feats: Sequence[Tensor], p: float,
                       passes: int, placement: str, scale: float = 1.0) -> Tuple[Tensor, ...]:
    """The T stochastic outputs of one teacher stage, in one batched call.

    The teacher stays in eval mode (BatchNorm uses its running statistics);
    only the injected dropout is stochastic. Runs under ``no_grad``.

    Args:
        detector (nn.Module): The teacher (eval mode).
        feats (Sequence[Tensor]): The stage's input from the deterministic
            pass, each (N, C, H, W): the backbone outputs for
            ``'backbone'``/``'neck'``, the neck outputs for ``'head'``.
        p (float): Dropout rate in [0, 1).
        passes (int): T.
        placement (str): One of :data:`PLACEMENTS`.
        scale (float): Resolution of the passes, in (0, 1]: the inputs are
            first pooled with :func:`pool`. Default 1.

    Returns:
        tuple[Tensor]: One (T, N, C, H', W') tensor per neck level, where
        (H', W') is the level's size, or about ``scale`` times it. For
        ``'head'``, C is the head's classification width and the values are
        probabilities.
    """
    if placement == 'backbone':
        out = detector.neck(_neck_inputs(detector.neck, feats, passes, p, scale))
    elif placement == 'neck':
        with lateral_dropout(detector.neck, p):
            out = detector.neck(_neck_inputs(detector.neck, feats, passes, 0.0, scale))
    elif placement == 'head':
        x = [stochastic_copies(pool(f, scale), passes, p) for f in feats]
        out = [score.sigmoid() for score in dense_head(detector)(x)[0]]
    else:
        raise ValueError(f'unknown placement {placement!r}; use one of {PLACEMENTS}')
    return tuple(split_passes(o, passes) for o in out)


class MCDropout:
    """UET's teacher-side provider: T stochastic versions of the distilled
    neck levels, for the loss's ``teacher_samples``.

    Reads the teacher's recorded deterministic pass (the backbone outputs,
    or the neck outputs for ``'head'``), so that only the repeated stage
    runs again, T times in one batched call.

    Args:
        cfg (dict): The spec's ``mc_dropout`` (see :func:`parse_mc_dropout`).
        teacher (nn.Module): The teacher detector.
        key (str): The config key of ``cfg``, for messages.
    """

    def __init__(self, cfg, teacher: nn.Module, key: str):
        self.cfg = parse_mc_dropout(cfg, key)
        check_placement(teacher, self.cfg['placement'], key)
        self.teacher, self.key = teacher, key
        # What the repeated stage reads from the deterministic pass.
        self.source = 'neck' if self.cfg['placement'] == 'head' else 'backbone'
        self.teacher_modules = {self.source}

    def __call__(self, records) -> Tuple[Tensor, ...]:
        """One (T, N, C, H', W') tensor per neck level, from ``records``
        (anything with ``get(name) -> levels``: a recorder or a dict)."""
        mc = self.cfg
        return mc_teacher_samples(self.teacher, records.get(self.source), mc['p'],
                                  mc['passes'], mc['placement'], mc['scale'])

    def fill_loss_config(self, cls: type, cfg: dict, key: str) -> None:
        """Give the loss config ``cfg`` the ``reduce``, ``placement`` and
        ``scale`` it takes, which must not contradict this spec's."""
        params = inspect.signature(cls.__init__).parameters
        for arg in ('reduce', 'placement', 'scale'):
            value = self.cfg[arg]
            if arg in params and cfg.setdefault(arg, value) != value:
                raise ValueError(f'{key}.{arg}={cfg[arg]!r} contradicts {self.key}.{arg}='
                                 f'{value!r}; set it in mc_dropout only')

    def check(self, samples: Callable[[], Sequence[Tensor]], t_levels) -> None:
        """Fail at build time when the passes do not run on the teacher or
        do not fit its levels ``t_levels`` (shapes (N, C, H, W))."""
        mc = self.cfg
        try:
            shapes = [tuple(s.shape) for s in samples()]
        except Exception as e:  # an architecture the placement does not fit
            raise ValueError(f'{self.key}: the MC passes fail on the teacher: {e}') from e
        # (T, N, C, H, W) like the teacher's levels, but 'head' samples have
        # the head's channels and scale < 1 shrinks H and W.
        fits = len(shapes) == len(t_levels) and all(
            len(s) == 5 and s[:2] == (mc['passes'], t[0]) and
            (mc['placement'] == 'head' or s[2] == t[1]) and
            (s[3:] == t[2:] if mc['scale'] == 1 else s[3] <= t[2] and s[4] <= t[3])
            for s, t in zip(shapes, t_levels))
        if not fits:
            raise ValueError(f'{self.key}: the MC samples have shapes {shapes}, which do not '
                             f'fit the teacher levels {list(map(tuple, t_levels))}')
