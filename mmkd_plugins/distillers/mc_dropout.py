"""Monte Carlo dropout on the teacher: the variance of T stochastic passes
through non-linear teacher computation, streamed in chunks.

Used by UET (Yi et al., arXiv 2406.06999, 2024; see ``docs/uet.md``). A
distillation spec with ``mc_dropout=dict(p, passes, placement, reduce, scale,
chunk)`` gives its :class:`~mmkd_plugins.distillers.FeatureTerm` a
teacher-side provider, :class:`MCDropout`, which hands the term's loss
``teacher_var``: per distilled level, the unbiased MC variance of every
element over the T passes.

Why the dropout sits where it does. MMDetection's FPN is linear (its convs
have ``act_cfg=None``), so dropout on its inputs gives the output variance
``p / (1 - p) * sum_i (A_ji x_i)^2`` for the FPN's linear map A: a fixed
function of the inputs, which T passes would only estimate with noise. The
passes must cross non-linear computation:

* ``'stage'``: dropout on the input of the backbone's last stage (ResNet's
  ``layer4``, i.e. C4), then that stage and the neck run on the dropped
  copies; the other backbone outputs enter the neck clean. The spread is how
  far the teacher's deepest features move, through BatchNorm and ReLU
  bottlenecks, when a fraction p of their input is dropped, carried to every
  level by the FPN's top-down path.
* ``'head'``: dropout on the neck outputs, then the dense head (conv towers
  with ReLU, sigmoid classifier). The samples are class probabilities: they
  have the neck levels' spatial size but not their channels, so they can
  only weight a neck-level loss spatially.

Streaming. The passes run ``chunk`` at a time, each chunk one batched call on
``chunk * N`` images, and only running sums of each pass's deviation from the
first pass are kept (:class:`ShiftedMoments`): memory does not grow with T.

Masks. Every pass seeds its own ``torch.Generator`` from (the global seed, the
training iteration, the call within the iteration, the pass index), see
:func:`pass_seeds`. Nothing is drawn from the global RNG, so a run resumed
with ``--resume`` draws the masks of a straight run, UET leaves the rest of
training's random stream (data order, augmentation) as it would be without
it, and the result does not depend on ``chunk``.

Cost: the repeated part runs on ``T*N`` images in ``ceil(T / chunk)`` calls.
``scale < 1`` runs the passes on inputs average-pooled to
``ceil(scale * size)``, dividing their cost by about ``1 / scale^2``; the
variance then has the lower resolution, and the loss upsamples the
uncertainty map it derives from it.
"""
import inspect
import math
import numbers
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn.functional as F
from mmengine.logging import MessageHub
from torch import Tensor, nn

from ..checks import PLACEMENTS, check_mc_options
from .detectors import dense_head

MC_DEFAULTS = dict(p=0.1, passes=8, placement='stage', reduce='spatial', scale=1.0, chunk=2)


def _is_int(value) -> bool:
    return not isinstance(value, bool) and isinstance(value, numbers.Integral)


def parse_mc_dropout(cfg, key: str) -> dict:
    """Check an ``mc_dropout`` spec and fill in the defaults.

    Args:
        cfg (dict): Any of ``p`` (dropout rate in [0, 1), default 0.1),
            ``passes`` (T >= 2, default 8), ``placement`` (one of
            :data:`~mmkd_plugins.checks.PLACEMENTS`, default ``'stage'``),
            ``reduce`` (one of :data:`~mmkd_plugins.checks.REDUCES`, default
            ``'spatial'``), ``scale`` (resolution of the passes relative to
            the teacher's, in (0, 1], default 1) and ``chunk`` (passes per
            batched call, >= 1, default 2).
        key (str): Config key of the spec, e.g.
            ``'distill_losses.loss_uet.mc_dropout'``, for error messages.

    Returns:
        dict: All six keys.

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
    if not _is_int(mc['passes']) or mc['passes'] < 2:
        raise ValueError(f'{key}.passes must be an int >= 2 (a variance needs two '
                         f'samples), got {mc["passes"]!r}')
    if not _is_int(mc['chunk']) or mc['chunk'] < 1:
        raise ValueError(f'{key}.chunk must be an int >= 1 (passes per batched call), '
                         f'got {mc["chunk"]!r}')
    scale = check_mc_options(mc['placement'], mc['reduce'], mc['scale'], f'{key}.')
    return dict(mc, p=float(p), passes=int(mc['passes']), chunk=int(mc['chunk']),
                scale=float(scale))


def backbone_last_stage(backbone: nn.Module) -> Optional[Tuple[nn.Module, int, int]]:
    """The last stage of a ResNet-style backbone (``res_layers``) and where
    its input and output sit among the backbone's outputs.

    Returns:
        tuple | None: ``(stage, input_index, output_index)``, or ``None``
        when the backbone has no ``res_layers`` or its ``out_indices`` miss
        one of its last two stages.
    """
    names = list(getattr(backbone, 'res_layers', None) or ())
    outs = list(getattr(backbone, 'out_indices', ()))
    last = len(names) - 1
    if last < 1 or last - 1 not in outs or last not in outs:
        return None
    return getattr(backbone, names[-1]), outs.index(last - 1), outs.index(last)


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
    if placement == 'stage' and backbone_last_stage(detector.backbone) is None:
        backbone = detector.backbone
        raise ValueError(
            f"{key}.placement='stage' needs a ResNet-style backbone (res_layers) whose "
            'out_indices hold its last two stages (the input and the output of the last '
            f'stage); the teacher has a {type(backbone).__name__} with out_indices='
            f"{getattr(backbone, 'out_indices', None)}. Use placement='head'")
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


def pool(feat: Tensor, scale: float) -> Tensor:
    """Average-pool (N, C, H, W) to ``ceil(scale * H) x ceil(scale * W)``
    (ceil, like a stride-2 conv, so halved pyramid levels stay halved)."""
    if scale == 1:
        return feat
    return F.adaptive_avg_pool2d(feat, [math.ceil(scale * n) for n in feat.shape[-2:]])


def pass_seeds(base: int, iteration: int, call: int, passes: int) -> List[int]:
    """One generator seed per MC pass.

    Each seed is a hash (numpy's ``SeedSequence``) of ``(base, iteration + 1,
    call, t)``: independent streams for every pass of every call, the same
    for the same key in any process, and the seed of pass t does not depend
    on how the passes are chunked.

    Args:
        base (int): The run's global seed (``torch.initial_seed()``).
        iteration (int): The training iteration, -1 outside training.
        call (int): The MC call within that iteration (0, 1, ...).
        passes (int): T.

    Returns:
        list[int]: T seeds in [0, 2**63).
    """
    return [int(np.random.SeedSequence([base, iteration + 1, call, t])
                .generate_state(1, np.uint64)[0]) & (2**63 - 1) for t in range(passes)]


def dropout(x: Tensor, p: float, generator: torch.Generator) -> Tensor:
    """Inverted dropout (``F.dropout(x, p, training=True)``) with the mask
    drawn from ``generator`` instead of the global RNG."""
    if p == 0:
        return x
    # Comparing uniforms is ~1.5x faster on the CPU than bernoulli_.
    keep = torch.rand(x.shape, generator=generator, device=x.device) >= p
    return x * keep / (1 - p)


class ShiftedMoments:
    """Streaming unbiased variance of MC passes, per level, in float32.

    Keeps, per level, the first pass ``S_1`` and the sums of ``d_t = S_t -
    S_1`` and ``d_t^2``; then ``var = (sum d^2 - (sum d)^2 / T) / (T - 1)``,
    clamped at 0 (the "shifted data" formula). Shifting by a sample keeps the
    sums of the size of the spread rather than of the activations (no
    cancellation), and passes that agree give exactly 0. Memory: three maps
    per level, whatever T.
    """

    def __init__(self):
        self.count = 0
        self.shift = self.s1 = self.s2 = None

    def add(self, levels: Sequence[Tensor]) -> None:
        """Add a chunk of passes: one (c, N, ...) tensor per level."""
        if self.shift is None:
            # clone: a view would keep the whole chunk's output alive.
            self.shift = [lv[0].float().clone() for lv in levels]
            self.s1 = [torch.zeros_like(s) for s in self.shift]
            self.s2 = [torch.zeros_like(s) for s in self.shift]
        for lv, shift, s1, s2 in zip(levels, self.shift, self.s1, self.s2):
            # A loop over the passes: no (c, ...) float temporary, and on the
            # CPU faster than reductions over a leading dim.
            for sample in lv:
                dev = sample.float() - shift
                s1.add_(dev)
                s2.addcmul_(dev, dev)
        self.count += levels[0].shape[0]

    def variance(self) -> Tuple[Tensor, ...]:
        """The unbiased variance per level, same shapes as one pass."""
        if self.count < 2:
            raise ValueError(f'a variance needs two passes, got {self.count}')
        t = self.count
        return tuple((s2 - s1 * s1 / t).clamp_min_(0) / (t - 1)
                     for s1, s2 in zip(self.s1, self.s2))


def _neck_reads(neck: nn.Module, num_inputs: int) -> range:
    # An FPN reads backbone levels [start_level, backbone_end_level) only;
    # the others are passed on untouched and never repeated, which spares
    # e.g. the stride-4 map that RetinaNet's FPN skips.
    return range(getattr(neck, 'start_level', 0), getattr(neck, 'backbone_end_level',
                                                          num_inputs))


def _stage_chunk(detector: nn.Module, feats: Sequence[Tensor], p: float,
                 generators: Sequence[torch.Generator]) -> Sequence[Tensor]:
    # feats: the backbone outputs, pooled; one pass per generator.
    stage, i_in, i_out = backbone_last_stage(detector.backbone)
    passes = len(generators)
    deep = stage(torch.cat([dropout(feats[i_in], p, g) for g in generators]))
    reads = _neck_reads(detector.neck, len(feats))
    inputs = [deep if i == i_out else repeat_passes(f, passes) if i in reads else f
              for i, f in enumerate(feats)]
    return detector.neck(inputs)


def _head_chunk(detector: nn.Module, feats: Sequence[Tensor], p: float,
                generators: Sequence[torch.Generator]) -> Sequence[Tensor]:
    # feats: the neck outputs, pooled; each pass drops all levels with its
    # own generator, level after level.
    dropped = [[dropout(f, p, g) for f in feats] for g in generators]
    x = [torch.cat(level) for level in zip(*dropped)]
    return [score.sigmoid() for score in dense_head(detector)(x)[0]]


_CHUNKS = {'stage': _stage_chunk, 'head': _head_chunk}


@torch.no_grad()
def mc_variance(detector: nn.Module, feats: Sequence[Tensor], p: float,
                seeds: Sequence[int], placement: str, scale: float = 1.0,
                chunk: int = 2) -> Tuple[Tensor, ...]:
    """The per-element variance of T stochastic teacher passes, streamed.

    The teacher stays in eval mode (BatchNorm uses its running statistics);
    only the injected dropout is stochastic. Runs under ``no_grad``.

    Args:
        detector (nn.Module): The teacher (eval mode).
        feats (Sequence[Tensor]): The deterministic pass's tensors the
            passes start from, each (N, C, H, W): the backbone outputs for
            ``'stage'``, the neck outputs for ``'head'``.
        p (float): Dropout rate in [0, 1).
        seeds (Sequence[int]): One generator seed per pass (T >= 2), see
            :func:`pass_seeds`.
        placement (str): One of :data:`PLACEMENTS`.
        scale (float): Resolution of the passes, in (0, 1]: ``feats`` are
            first pooled with :func:`pool`. Default 1.
        chunk (int): Passes per batched call. Default 2.

    Returns:
        tuple[Tensor]: Per neck level, the unbiased variance (N, C, H', W'),
        float32, where (H', W') is the level's size, or about ``scale`` times
        it. For ``'head'``, C is the head's classification width (variance of
        probabilities).
    """
    if placement not in _CHUNKS:
        raise ValueError(f'unknown placement {placement!r}; use one of {PLACEMENTS}')
    feats = [pool(f, scale) for f in feats]
    device = feats[0].device
    moments = ShiftedMoments()
    for start in range(0, len(seeds), chunk):
        generators = [torch.Generator(device=device).manual_seed(s)
                      for s in seeds[start:start + chunk]]
        out = _CHUNKS[placement](detector, feats, p, generators)
        moments.add([split_passes(o, len(generators)) for o in out])
        del out  # free the chunk before the next one runs
    return moments.variance()


class MCDropout:
    """UET's teacher-side provider: the MC variance of the distilled neck
    levels, for the loss's ``teacher_var``.

    Reads the teacher's recorded deterministic pass (the backbone outputs,
    or the neck outputs for ``'head'``), so that only the repeated part runs
    again. Each call draws its masks from seeds keyed by the training
    iteration (MMEngine's ``MessageHub`` info ``'iter'``, which its
    ``RuntimeInfoHook`` sets every iteration and ``--resume`` restores) and
    by the call's index within that iteration (group DRO steps once per
    group). Calls outside training get iteration -1 and a running index.

    Args:
        cfg (dict): The spec's ``mc_dropout`` (see :func:`parse_mc_dropout`).
        teacher (nn.Module): The teacher detector.
        key (str): The config key of ``cfg``, for messages.
    """

    def __init__(self, cfg, teacher: nn.Module, key: str):
        self.cfg = parse_mc_dropout(cfg, key)
        check_placement(teacher, self.cfg['placement'], key)
        self.teacher, self.key = teacher, key
        # What the repeated part reads from the deterministic pass.
        self.source = 'neck' if self.cfg['placement'] == 'head' else 'backbone'
        self.teacher_modules = {self.source}
        self._iteration, self._calls = None, 0

    def seeds(self, training: bool) -> List[int]:
        """The T seeds of the next call (:func:`pass_seeds`)."""
        iteration = MessageHub.get_current_instance().get_info('iter') if training else None
        iteration = -1 if iteration is None else int(iteration)
        if iteration != self._iteration:
            self._iteration, self._calls = iteration, 0
        call, self._calls = self._calls, self._calls + 1
        return pass_seeds(torch.initial_seed(), iteration, call, self.cfg['passes'])

    def __call__(self, records, training: bool = False) -> Tuple[Tensor, ...]:
        """One (N, C, H', W') variance per neck level, from ``records``
        (anything with ``get(name) -> levels``: a recorder or a dict);
        ``training`` keys the masks by the training iteration."""
        mc = self.cfg
        return mc_variance(self.teacher, records.get(self.source), mc['p'],
                           self.seeds(training), mc['placement'], mc['scale'], mc['chunk'])

    def fill_loss_config(self, cls: type, cfg: dict, key: str) -> None:
        """Give the loss config ``cfg`` the ``reduce``, ``placement`` and
        ``scale`` it takes, which must not contradict this spec's."""
        params = inspect.signature(cls.__init__).parameters
        for arg in ('reduce', 'placement', 'scale'):
            value = self.cfg[arg]
            if arg in params and cfg.setdefault(arg, value) != value:
                raise ValueError(f'{key}.{arg}={cfg[arg]!r} contradicts {self.key}.{arg}='
                                 f'{value!r}; set it in mc_dropout only')

    def check(self, variance: Callable[[], Sequence[Tensor]], t_levels) -> None:
        """Fail at build time when the passes do not run on the teacher or
        do not fit its levels ``t_levels`` (shapes (N, C, H, W))."""
        mc = self.cfg
        try:
            shapes = [tuple(v.shape) for v in variance()]
        except Exception as e:  # an architecture the placement does not fit
            raise ValueError(f'{self.key}: the MC passes fail on the teacher: {e}') from e
        # (N, C, H, W) like the teacher's levels, but 'head' variances have
        # the head's channels and scale < 1 shrinks H and W.
        fits = len(shapes) == len(t_levels) and all(
            len(s) == 4 and s[0] == t[0] and (mc['placement'] == 'head' or s[1] == t[1]) and
            (s[2:] == t[2:] if mc['scale'] == 1 else s[2] <= t[2] and s[3] <= t[3])
            for s, t in zip(shapes, t_levels))
        if not fits:
            raise ValueError(f'{self.key}: the MC variances have shapes {shapes}, which do '
                             f'not fit the teacher levels {list(map(tuple, t_levels))}')
