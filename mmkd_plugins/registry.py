"""Registries of the ``mmkd_plugins`` scope, each a child of MMDetection's.

mmkd_plugins registers everything into MMDetection's own registries, so that
a config needs only ``custom_imports``. These children serve one case: a
config whose ``_base_`` names a shipped config as
``'mmkd_plugins::<folder>/<name>.py'``. mmengine gives every ``type`` read
from such a base the scope ``mmkd_plugins``, imports
``mmkd_plugins.registry`` and builds the type from the registry of that
scope; without one it falls back to mmengine's root registry, which knows no
MMDetection type. Each child here is empty: a look-up goes on to its parent,
MMDetection's registry, and from there to mmengine's, exactly as under
MMDetection's own scope. (OpenMMLab's downstream projects, mmyolo or mmrazor,
declare their registries the same way.)
"""
from mmengine.registry import Registry

from mmdet import registry as mmdet_registry
from .zoo.resources import SCOPE

_NAMES = ('RUNNERS', 'RUNNER_CONSTRUCTORS', 'LOOPS', 'HOOKS', 'DATASETS', 'DATA_SAMPLERS',
          'TRANSFORMS', 'MODELS', 'MODEL_WRAPPERS', 'WEIGHT_INITIALIZERS', 'OPTIMIZERS',
          'OPTIM_WRAPPERS', 'OPTIM_WRAPPER_CONSTRUCTORS', 'PARAM_SCHEDULERS', 'METRICS',
          'EVALUATOR', 'TASK_UTILS', 'VISUALIZERS', 'VISBACKENDS', 'LOG_PROCESSORS')



class _ScopeRegistry(Registry):
    """A registry without types of its own: every look-up is its parent's."""

    def import_from_location(self) -> None:
        # mmengine imports a registry's modules on its first look-up, but a
        # child reads its parent's table without asking the parent to fill
        # it: MMDetection's models would be missing unless something had
        # already looked one up under MMDetection's scope.
        self.parent.import_from_location()


for _name in _NAMES:
    _parent = getattr(mmdet_registry, _name)
    globals()[_name] = _ScopeRegistry(_parent.name, parent=_parent, scope=SCOPE)
