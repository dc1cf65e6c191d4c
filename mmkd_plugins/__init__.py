"""mmkd_plugins: knowledge distillation plugins for MMDetection 3.x.

Importing the package registers its distillers, losses, hooks, datasets and
metrics into MMDetection's registries, and makes mmengine's checkpoint
loading work on torch >= 2.6 (see :mod:`mmkd_plugins.compat`). A config only
needs::

    custom_imports = dict(imports=['mmkd_plugins'], allow_failed_imports=False)
"""
from . import compat  # noqa: F401  (first: patches checkpoint loading)
from . import datasets, distillers, evaluation, hooks, losses  # noqa: F401

__version__ = '0.1.0'
