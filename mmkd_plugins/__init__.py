"""mmkd_plugins: knowledge distillation plugins for MMDetection 3.x.

Importing the package registers its distillers, losses, hooks, datasets and
metrics into MMDetection's registries, and makes mmengine's checkpoint
loading work on torch >= 2.6 (see :mod:`mmkd_plugins.compat`). A config only
needs::

    custom_imports = dict(imports=['mmkd_plugins'], allow_failed_imports=False)

The configs, tools and model index ship inside the package; a shipped config
is named by :func:`config_path` (``mmkd_plugins.config_path('fgd/<name>.py')``)
or, on the command line, ``mmkd_plugins::fgd/<name>.py``.
"""
from . import compat  # noqa: F401  (first: patches checkpoint loading)
from . import datasets, distillers, evaluation, hooks, losses, registry  # noqa: F401
from .zoo.resources import config_path, register_config_scope

register_config_scope()

__version__ = '0.1.0'
