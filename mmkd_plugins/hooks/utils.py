"""Shared helper of the distillation hooks."""
from mmengine.model import is_model_wrapper


def get_distiller(runner, hook_name: str):
    """The runner's :class:`DetectionDistiller`, unwrapped from DDP.

    Raises:
        TypeError: the runner trains something else; the message names the
            hook so the user knows which config entry is wrong.
    """
    from ..distillers import DetectionDistiller
    model = runner.model.module if is_model_wrapper(runner.model) else runner.model
    if not isinstance(model, DetectionDistiller):
        raise TypeError(
            f'{hook_name} needs model.type="DetectionDistiller", but the '
            f'runner trains a {type(model).__name__}')
    return model
