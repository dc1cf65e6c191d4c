"""Every build-time check of a config value, in one place.

A wrong value in a config should fail when the model is built, with a message
that names the config key, and the same mistake should read the same way
wherever it is made. Losses, distiller parts and hooks therefore all check
their arguments with the functions here instead of their own copies:

* numbers and choices: :func:`check_number`, :func:`check_positive_int`,
  :func:`check_choice`;
* loss configs: :func:`distill_loss_class` (a registered
  :class:`~mmkd_plugins.losses.BaseDistillLoss`), :func:`check_loss_args`
  (arguments the class takes), :func:`fill_loss_args` (values measured by the
  distiller, such as ``in_channels``);
* Monte Carlo dropout: :data:`PLACEMENTS` (and :data:`REMOVED_PLACEMENTS`), :data:`REDUCES` and
  :func:`check_mc_options`, read by the distiller's sampler
  (:mod:`~mmkd_plugins.distillers.mc_dropout`) and by UET's loss alike.
"""
import inspect
import numbers
from typing import Any, Mapping, Optional, Sequence

from mmdet.registry import MODELS

#: Where MC dropout sits in the teacher: before its last backbone stage, or
#: before its dense head (both non-linear; see ``docs/uet.md``).
PLACEMENTS = ('stage', 'head')
#: Placements that were removed, and why (quoted by the error).
REMOVED_PLACEMENTS = {
    'backbone': "MMDetection's FPN is linear, so dropout on its inputs has a closed-form "
                'variance: sampling it measures nothing',
    'neck': "MMDetection's FPN is linear, so dropout on its lateral outputs has a "
            'closed-form variance: sampling it measures nothing',
}
#: The shape of the uncertainty map: (N, 1, H, W), (N, C, 1, 1), (N, C, H, W).
REDUCES = ('spatial', 'channel', 'both')


def check_number(name: str, value, *, min_value: float = 0.0, inclusive: bool = True,
                 max_value: Optional[float] = None) -> float:
    """Validate a real-valued hyper-parameter.

    Args:
        name (str): Argument name (or config key), quoted in the message.
        value: The value to check.
        min_value (float): Lower bound. Defaults to 0.
        inclusive (bool): Whether ``min_value`` itself is allowed.
        max_value (float, optional): Inclusive upper bound; with it the
            message names the interval, e.g. ``must be in (0, 1]``.

    Returns:
        float: ``value`` as a Python float.

    Raises:
        TypeError: If ``value`` is not a real number (``bool`` is rejected
            because ``True`` as a weight is almost certainly a typo).
        ValueError: If ``value`` is out of bounds or not finite.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f'{name} must be a real number, got {value!r} '
                        f'of type {type(value).__name__}')
    value = float(value)
    if value != value or value in (float('inf'), float('-inf')):
        raise ValueError(f'{name} must be finite, got {value}')
    too_low = value < min_value or (not inclusive and value == min_value)
    if max_value is not None and (too_low or value > max_value):
        low = '[' if inclusive else '('
        raise ValueError(f'{name} must be in {low}{min_value:g}, {max_value:g}], got {value:g}')
    if too_low:
        op = '>=' if inclusive else '>'
        raise ValueError(f'{name} must be {op} {min_value:g}, got {value:g}')
    return value


def check_positive_int(name: str, value) -> int:
    """Validate a positive integer hyper-parameter (e.g. a channel count).

    Args:
        name (str): Argument name, quoted in the error message.
        value: The value to check.

    Returns:
        int: ``value``.

    Raises:
        TypeError: If ``value`` is not an ``int`` (``bool`` is rejected).
        ValueError: If ``value < 1``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f'{name} must be an int, got {value!r} '
                        f'of type {type(value).__name__}')
    if value < 1:
        raise ValueError(f'{name} must be >= 1, got {value}')
    return int(value)


def check_choice(name: str, value, allowed: Sequence) -> Any:
    """``value`` if it is one of ``allowed``, else a ValueError naming ``name``."""
    if value not in allowed:
        raise ValueError(f'{name} must be one of {tuple(allowed)}, got {value!r}')
    return value


def check_mc_options(placement: str, reduce: str, scale, prefix: str = '') -> float:
    """The rules of MC dropout's ``placement``, ``reduce`` and ``scale``.

    ``'head'`` samples are the dense head's class probabilities: they have
    the neck levels' spatial size but not their channels, so they can only
    weight a loss spatially.

    Args:
        placement (str): One of :data:`PLACEMENTS`.
        reduce (str): One of :data:`REDUCES`.
        scale (float): Resolution of the passes, in (0, 1].
        prefix (str): Prefix of the names in messages, e.g.
            ``'distill_losses.loss_uet.mc_dropout.'``.

    Returns:
        float: ``scale``.
    """
    if placement in REMOVED_PLACEMENTS:
        raise ValueError(f'{prefix}placement={placement!r} was removed: '
                         f'{REMOVED_PLACEMENTS[placement]} (docs/uet.md). Use one of '
                         f'{PLACEMENTS}')
    check_choice(f'{prefix}placement', placement, PLACEMENTS)
    check_choice(f'{prefix}reduce', reduce, REDUCES)
    scale = check_number(f'{prefix}scale', scale, inclusive=False, max_value=1)
    if placement == 'head' and reduce != 'spatial':
        raise ValueError(
            f"{prefix}reduce={reduce!r} with placement='head': the head's outputs have "
            "the neck's spatial size but not its channels, so only reduce='spatial' applies")
    return scale


def distill_loss_class(cfg, key: str) -> type:
    """The class a loss config builds, which must be a distillation loss.

    Args:
        cfg (dict): A loss config with a ``type`` (registry name or class).
        key (str): The config key of ``cfg``, e.g.
            ``'distill_losses.loss_fgd.loss'`` or ``'host'``.

    Returns:
        type: A subclass of :class:`~mmkd_plugins.losses.BaseDistillLoss`.
    """
    from .losses.base import BaseDistillLoss  # the losses import this module
    if not isinstance(cfg, Mapping) or 'type' not in cfg:
        raise TypeError(f'{key} must be a loss config dict with a "type", got {cfg!r}')
    loss_type = cfg['type']
    cls = MODELS.get(loss_type) if isinstance(loss_type, str) else loss_type
    if cls is None:
        raise ValueError(f'{key}.type: unknown loss {loss_type!r}')
    if not (inspect.isclass(cls) and issubclass(cls, BaseDistillLoss)):
        raise TypeError(f'{key}.type: {loss_type!r} is not a distillation loss '
                        '(a subclass of mmkd_plugins.losses.BaseDistillLoss)')
    return cls


def check_loss_args(cls: type, cfg: Mapping, key: str) -> None:
    """Fail on arguments in ``cfg`` that ``cls.__init__`` does not take."""
    params = inspect.signature(cls.__init__).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return
    unknown = [k for k in cfg if k != 'type' and k not in params]
    if unknown:
        raise ValueError(f'{key}: {cls.__name__} has no argument(s) {unknown}; '
                         f'it takes {[p for p in params if p != "self"]}')


def fill_loss_args(cls: type, cfg: dict, key: str, values: Mapping, source: str) -> dict:
    """Put measured ``values`` into ``cfg`` for the arguments ``cls`` takes.

    An argument the config sets already must agree with the measurement.

    Args:
        cls (type): The loss class.
        cfg (dict): The loss config, changed in place.
        key (str): The config key of ``cfg``, for messages.
        values (dict): ``{argument: value}``; ``None`` values are skipped.
        source (str): What measured them, for messages, e.g.
            ``"the teacher's 'neck' gives"``.

    Returns:
        dict: ``cfg``.
    """
    params = inspect.signature(cls.__init__).parameters
    for arg, value in values.items():
        if value is None or arg not in params:
            continue
        if cfg.setdefault(arg, value) != value:
            raise ValueError(f'{key}.{arg}={cfg[arg]} but {source} {value}')
    return cfg
