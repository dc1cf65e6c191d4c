"""Record the outputs of named submodules during a forward pass.

A distillation loss names what it compares by module name: ``'neck'`` (the
tuple of FPN levels), ``'backbone'``, or a head convolution such as
``'bbox_head.retina_cls'``. A head convolution is shared by all FPN levels and
so is called once per level; its record is then the tuple of those calls in
order, which is again "one tensor per level".
"""
from contextlib import contextmanager
from typing import Dict, Iterable, List, Optional, Tuple

from torch import Tensor, nn

from ..losses.base import as_levels


class OutputRecorder:
    """Forward hooks on ``model``'s submodules ``names``, active inside
    :meth:`record` only.

    Args:
        model (nn.Module): The detector whose modules are recorded.
        names (Iterable[str]): Dotted submodule names. Must exist
            (checked by :func:`resolve_module` beforehand).
    """

    def __init__(self, model: nn.Module, names: Iterable[str]):
        self.names = sorted(set(names))
        self._calls: Dict[str, List] = {}
        self._active = False
        for name in self.names:
            model.get_submodule(name).register_forward_hook(self._hook(name))

    def _hook(self, name: str):

        def hook(module, args, output):
            if self._active:
                self._calls[name].append(output)

        return hook

    @contextmanager
    def record(self, preset: Optional[Dict[str, Tuple[Tensor, ...]]] = None):
        """Collect outputs during the ``with`` block; read them with
        :meth:`get` afterwards.

        Args:
            preset (dict, optional): ``{name: levels}`` recorded already,
                e.g. the slice of a shared forward pass that does not run
                again inside the block.
        """
        preset = preset or {}
        self._calls = {name: [preset[name]] if name in preset else [] for name in self.names}
        self._active = True
        try:
            yield self
        finally:
            self._active = False

    def get(self, name: str) -> Tuple[Tensor, ...]:
        """The recorded levels of ``name`` (see module docstring)."""
        calls = self._calls.get(name)
        if not calls:
            raise RuntimeError(
                f'module {name!r} was not called during the forward pass, so '
                'there is nothing to distil from it')
        what = f'the output of module {name!r}'
        if len(calls) == 1:
            return as_levels(calls[0], what)
        return tuple(t for call in calls for t in as_levels(call, what))

    def recorded(self) -> Dict[str, Tuple[Tensor, ...]]:
        """``{name: levels}`` of every module called in the last
        :meth:`record` block (those not called are left out)."""
        return {name: self.get(name) for name, calls in self._calls.items() if calls}

    def clear(self) -> None:
        """Drop the references to the last pass's tensors."""
        self._calls = {}


def resolve_module(model: nn.Module, name: str, who: str, key: str) -> nn.Module:
    """``model.get_submodule(name)`` with an error that names the config key.

    Args:
        model (nn.Module): Student or teacher detector.
        name (str): Dotted module name from the config.
        who (str): ``'student'`` or ``'teacher'``, for the message.
        key (str): The config key that holds ``name``, for the message.
    """
    try:
        return model.get_submodule(name)
    except AttributeError:
        top = ', '.join(n for n, _ in model.named_children())
        raise ValueError(
            f'{key}: the {who} has no module named {name!r}; its top-level '
            f'modules are: {top}') from None
