"""Checkpoint loading that works on torch >= 2.6 without trusting pickles.

mmengine 0.10.7 calls ``torch.load(filename, map_location=...)``. Since torch
2.6 that means ``weights_only=True``, and every checkpoint mmengine writes
fails to load: its ``message_hub`` pickles numpy arrays and
:class:`~mmengine.logging.HistoryBuffer` objects, and the buffer's
statistics table is pickled as ``getattr(HistoryBuffer, 'mean')``. So both
``--resume`` and loading a teacher trained with MMDetection fail with
"Weights only load failed".

Passing ``weights_only=False`` would fix it by running arbitrary pickled code.
Instead, :func:`load_checkpoint_file` unpickles with a restricted
:class:`pickle.Unpickler` whose globals are limited to

* what torch's own ``weights_only`` loader allows, plus the globals a user has
  registered with :func:`torch.serialization.add_safe_globals`;
* numpy's array and scalar reconstructors and dtypes;
* :class:`~mmengine.logging.HistoryBuffer`, and ``getattr`` only in the form
  ``getattr(HistoryBuffer, <statistics method>)``. A free ``getattr`` is not
  allowed: ``getattr(f, '__globals__')`` leads to ``eval``.

Anything else raises :class:`pickle.UnpicklingError` naming the global, so a
file that really needs more is refused with a message, never executed.

Importing :mod:`mmkd_plugins` registers this loader for local paths and
http(s) URLs with mmengine's :class:`CheckpointLoader`, which is what
``Runner.resume``, ``load_from``, ``init_detector`` and the distiller's
teacher loading all go through.
"""
import os.path as osp
import pickle
from typing import Any, Callable, Dict

import numpy as np
import torch
from mmengine.logging import HistoryBuffer
from mmengine.runner.checkpoint import CheckpointLoader

_GETATTR_NAMES = ('builtins.getattr', '__builtin__.getattr')


def _numpy_globals() -> Dict[str, Any]:
    """numpy globals that array and scalar pickles reference, under both the
    numpy >= 2 (``numpy._core``) and numpy 1.x (``numpy.core``) names."""
    from numpy._core import multiarray
    found = {
        'numpy.ndarray': np.ndarray,
        'numpy.dtype': np.dtype,
    }
    for prefix in ('numpy._core.multiarray', 'numpy.core.multiarray'):
        found[f'{prefix}._reconstruct'] = multiarray._reconstruct
        found[f'{prefix}.scalar'] = multiarray.scalar
    # numpy >= 1.25 pickles some dtypes by their class (numpy.dtypes.Float64DType).
    for name in getattr(np, 'dtypes').__all__ if hasattr(np, 'dtypes') else ():
        found[f'numpy.dtypes.{name}'] = getattr(np.dtypes, name)
    return found


def _allowed_globals() -> Dict[str, Any]:
    """Every global the restricted unpickler resolves, by ``module.name``.

    Built per load so that globals registered with
    :func:`torch.serialization.add_safe_globals` after import are honoured.
    """
    from torch import _weights_only_unpickler as wou
    allowed = dict(wou._get_allowed_globals())
    for key, obj in wou._get_user_allowed_globals().items():
        allowed[key] = obj
    allowed.update(_numpy_globals())
    allowed['mmengine.logging.history_buffer.HistoryBuffer'] = HistoryBuffer
    return allowed


def _history_buffer_getattr(obj: Any, name: str) -> Callable:
    """The one ``getattr`` a checkpoint may call: a HistoryBuffer statistic."""
    # The defaults are registered lazily by the first HistoryBuffer().
    known = {'min', 'max', 'mean', 'current', *HistoryBuffer._statistics_methods}
    if obj is HistoryBuffer and name in known and not name.startswith('_'):
        return getattr(HistoryBuffer, name)
    raise pickle.UnpicklingError(
        f'checkpoint calls getattr({obj!r}, {name!r}); mmkd_plugins only '
        'allows getattr(HistoryBuffer, <statistics method>)')


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only the globals of :func:`_allowed_globals`."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        key = f'{module}.{name}'
        if key in self._allowed:
            return self._allowed[key]
        if key in _GETATTR_NAMES:
            return _history_buffer_getattr
        raise pickle.UnpicklingError(
            f'checkpoint references the global {key!r}, which mmkd_plugins '
            'does not load: a checkpoint is data and should not need it. If '
            'you trust this file and the type is plain data, allow it with '
            f'torch.serialization.add_safe_globals([{name}]) before loading.')


class _RestrictedPickleModule:
    """The ``pickle_module`` handed to :func:`torch.load`."""
    __name__ = 'mmkd_plugins.compat'
    Unpickler = _RestrictedUnpickler
    UnpicklingError = pickle.UnpicklingError

    @staticmethod
    def load(file, **kwargs):
        return _RestrictedUnpickler(file, **kwargs).load()


def load_checkpoint_file(filename: Any, map_location: Any = None) -> Any:
    """Load a checkpoint file or buffer with the restricted unpickler.

    Args:
        filename (str | PathLike | IO[bytes]): A local path or an open file.
        map_location: As for :func:`torch.load`.

    Returns:
        The unpickled object, usually a dict with ``state_dict`` and ``meta``.

    Raises:
        FileNotFoundError: ``filename`` is a path that does not exist.
        pickle.UnpicklingError: the file references a global that is not
            allowed; the message names it.
    """
    if isinstance(filename, (str, bytes)) or hasattr(filename, '__fspath__'):
        filename = osp.expanduser(filename)
        if not osp.isfile(filename):
            raise FileNotFoundError(f'checkpoint file {filename!r} does not exist')
    # weights_only=False is required for torch.load to accept a pickle_module;
    # the module passed is the restricted one, so nothing arbitrary runs.
    return torch.load(
        filename,
        map_location=map_location,
        pickle_module=_RestrictedPickleModule,
        weights_only=False)


def load_from_local_restricted(filename: str, map_location: Any = None) -> Any:
    """mmengine loader for local paths (the '' prefix)."""
    return load_checkpoint_file(filename, map_location)


def load_from_http_restricted(filename: str, map_location: Any = None,
                    model_dir: Any = None) -> Any:
    """mmengine loader for http(s) URLs: download once, then load locally."""
    from mmengine.utils.dl_utils.hub import _get_torch_home
    from torch.hub import download_url_to_file
    model_dir = model_dir or osp.join(_get_torch_home(), 'checkpoints')
    cached = osp.join(model_dir, osp.basename(filename.split('?')[0]))
    if not osp.isfile(cached):
        import os
        os.makedirs(model_dir, exist_ok=True)
        download_url_to_file(filename, cached, progress=False)
    return load_checkpoint_file(cached, map_location)


def install() -> None:
    """Register the restricted loaders with mmengine (idempotent)."""
    CheckpointLoader.register_scheme(prefixes='', loader=load_from_local_restricted, force=True)
    CheckpointLoader.register_scheme(
        prefixes=('http://', 'https://'), loader=load_from_http_restricted, force=True)


install()
