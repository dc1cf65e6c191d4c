"""Stop distilling at a given epoch or iteration (the student then trains on
its detection loss alone, and the teacher is no longer run)."""
from typing import Optional

from mmengine.hooks import Hook

from mmdet.registry import HOOKS
from .utils import get_distiller


@HOOKS.register_module()
class DistillStopHook(Hook):
    """Turn distillation off from ``stop_epoch`` or ``stop_iter`` on.

    The state is derived from the runner's epoch/iteration before every
    iteration, so it is right after ``--resume`` too.

    Args:
        stop_epoch (int, optional): First (0-based) epoch without
            distillation.
        stop_iter (int, optional): First (0-based) iteration without
            distillation. Exactly one of the two must be given.
    """
    priority = 'NORMAL'

    def __init__(self, stop_epoch: Optional[int] = None, stop_iter: Optional[int] = None):
        if (stop_epoch is None) == (stop_iter is None):
            raise ValueError('DistillStopHook needs exactly one of stop_epoch '
                             f'and stop_iter, got stop_epoch={stop_epoch}, stop_iter={stop_iter}')
        for name, value in (('stop_epoch', stop_epoch), ('stop_iter', stop_iter)):
            if value is not None and (not isinstance(value, int) or value < 0):
                raise ValueError(f'DistillStopHook: {name} must be an int >= 0, got {value!r}')
        self.stop_epoch, self.stop_iter = stop_epoch, stop_iter

    def before_train(self, runner) -> None:
        get_distiller(runner, type(self).__name__)  # fail before the first step

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        model = get_distiller(runner, type(self).__name__)
        stop = (runner.epoch >= self.stop_epoch if self.stop_epoch is not None
                else runner.iter >= self.stop_iter)
        if stop and model.distill_enabled:
            runner.logger.info(f'DistillStopHook: distillation stopped at epoch '
                               f'{runner.epoch}, iteration {runner.iter}')
        model.distill_enabled = not stop
