"""Warm-up and decay of the distillation loss weight.

Early in training the student's features are random and a strong
distillation loss can swamp the detection loss; late in training a decaying
weight lets the student settle on its own task. The factor multiplies every
distillation loss of the :class:`DetectionDistiller`.
"""
import math
from typing import Optional

from mmengine.hooks import Hook

from mmdet.registry import HOOKS
from ..checks import check_choice, check_number
from .utils import get_distiller

_DECAYS = (None, 'linear', 'cosine')


def loss_weight_factor(it: int, max_iters: int, warmup_iters: int = 0,
                       warmup_ratio: float = 0.0, decay: Optional[str] = None,
                       decay_begin: int = 0, end_factor: float = 0.0) -> float:
    """The factor at 0-based iteration ``it``.

    Linear warm-up from ``warmup_ratio`` to 1 over ``warmup_iters``; then,
    from ``decay_begin`` to ``max_iters``, a linear or cosine decay from 1 to
    ``end_factor``. Warm-up and decay multiply where they overlap.
    """
    factor = 1.0
    if warmup_iters > 0 and it < warmup_iters:
        factor *= warmup_ratio + (1 - warmup_ratio) * it / warmup_iters
    if decay is not None and it >= decay_begin and max_iters > decay_begin:
        progress = min(1.0, (it - decay_begin) / (max_iters - decay_begin))
        if decay == 'linear':
            shape = 1 - progress
        else:
            shape = 0.5 * (1 + math.cos(math.pi * progress))
        factor *= end_factor + (1 - end_factor) * shape
    return factor


@HOOKS.register_module()
class DistillLossWeightHook(Hook):
    """Schedule the distillation loss weight by iteration.

    The factor is recomputed from ``runner.iter`` before every iteration
    (right after ``--resume``) and logged as ``distill_scale``.

    Args:
        warmup_iters (int): Length of the linear warm-up. Default 0.
        warmup_ratio (float): Factor at iteration 0, in [0, 1]. Default 0.
        decay (str, optional): None, 'linear' or 'cosine'. Default None.
        decay_begin (int): Iteration where the decay starts. Default 0.
        end_factor (float): Factor reached at ``max_iters`` (the last
            iteration, ``max_iters - 1``, is one decay step short of it,
            as with mmengine's schedulers), >= 0.
    """
    priority = 'NORMAL'

    def __init__(self, warmup_iters: int = 0, warmup_ratio: float = 0.0,
                 decay: Optional[str] = None, decay_begin: int = 0,
                 end_factor: float = 0.0):
        if not isinstance(warmup_iters, int) or warmup_iters < 0:
            raise ValueError(f'warmup_iters must be an int >= 0, got {warmup_iters!r}')
        check_number('warmup_ratio', warmup_ratio, max_value=1)
        check_choice('decay', decay, _DECAYS)
        check_number('decay_begin', decay_begin)
        check_number('end_factor', end_factor)
        self.kwargs = dict(warmup_iters=warmup_iters, warmup_ratio=warmup_ratio,
                           decay=decay, decay_begin=decay_begin, end_factor=end_factor)

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        model = get_distiller(runner, type(self).__name__)
        model.distill_loss_scale = loss_weight_factor(runner.iter, runner.max_iters, **self.kwargs)
        runner.message_hub.update_scalar('train/distill_scale', model.distill_loss_scale)
