"""Deliberately broken distillation, to check that the benchmark can see a
method fail.

:class:`ShuffledTeacherLoss` hands its host loss the teacher's features of
*another image of the batch* (the batch rolled by one): the same features,
the same statistics and the same loss scale, but no correspondence between
what the student sees and what it is told to imitate. A benchmark on which
this row scores like its working twin cannot tell transfer from
regularisation.

:class:`InvertedGroupDRO` is group DRO whose weights climb towards the
groups that do best. Read against the working group DRO, it tells whether
the weights' movement changes the worst group by more than the seeds' noise.

Both are registered only when this module is imported, so they never appear
in a user's registry by accident::

    custom_imports = dict(imports=['mmkd_plugins', 'mmkd_plugins.benchmark.power_check'],
                          allow_failed_imports=False)
"""
import inspect
from typing import Optional, Sequence

from torch import Tensor

from mmdet.registry import MODELS
from mmkd_plugins.distillers.group_dro_distiller import GroupDRO
from mmkd_plugins.losses.base import BaseDistillLoss


def roll_batch(levels: Sequence[Tensor]) -> tuple:
    """Each level's batch rolled by one: image ``i`` gets image ``i - 1``'s
    map (a derangement for batches of two or more).

    Args:
        levels (Sequence[Tensor]): ``(N, C, H, W)`` per level.

    Returns:
        tuple[Tensor]: the same shapes.
    """
    return tuple(t.roll(1, dims=0) for t in levels)


@MODELS.register_module()
class ShuffledTeacherLoss(BaseDistillLoss):
    """A host loss fed the teacher features of another image of the batch.

    Args:
        host (dict): Config of the host loss (any
            :class:`~mmkd_plugins.losses.BaseDistillLoss`).
        in_channels (int, optional): Passed on to the host if it takes it
            (the distiller fills it in from its probe).
        num_levels (int, optional): Likewise.
        loss_weight (float): Multiplier of the host's loss. Default 1.0.
    """

    def __init__(self, host: dict, in_channels: Optional[int] = None,
                 num_levels: Optional[int] = None, loss_weight: float = 1.0) -> None:
        super().__init__(loss_weight=loss_weight)
        if not isinstance(host, dict) or 'type' not in host:
            raise TypeError(f'host must be a loss config dict with a "type", got {host!r}')
        cfg = dict(host)
        cls = MODELS.get(cfg['type'])
        if cls is None or not (inspect.isclass(cls) and issubclass(cls, BaseDistillLoss)):
            raise ValueError(f'host.type: {cfg["type"]!r} is not a registered distillation loss')
        params = inspect.signature(cls.__init__).parameters
        for arg, value in (('in_channels', in_channels), ('num_levels', num_levels)):
            if value is not None and arg in params:
                cfg.setdefault(arg, value)
        self.host = MODELS.build(cfg)

    def forward(self, student, teacher, data_samples=None, weights=None) -> Tensor:
        """The host loss on ``(student, teacher rolled by one image)``; the
        data samples (boxes for FGD's masks) stay the student's own."""
        if isinstance(teacher, Tensor):
            teacher = (teacher,)
        if teacher[0].shape[0] < 2:
            raise ValueError('ShuffledTeacherLoss needs batches of at least 2 images '
                             f'to shuffle, got {teacher[0].shape[0]}')
        return self.loss_weight * self.host(student, roll_batch(teacher),
                                            data_samples=data_samples, weights=weights)


@MODELS.register_module()
class InvertedGroupDRO(GroupDRO):
    """Group DRO with the sign of its signal flipped: the weights climb
    towards the groups that do *best*, starving the worst group.

    The group suite's power check: read against the working group DRO (same
    arguments, same split, same step size), it shows whether the movement of
    the weights at that step size changes the worst group by more than the
    seeds' noise. Takes :class:`~mmkd_plugins.distillers.GroupDRO`'s arguments.
    """

    def eg_signal(self, distiller, steps):
        return -super().eg_signal(distiller, steps)
