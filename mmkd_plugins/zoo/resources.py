"""Where the configs, tools and model index shipped with mmkd_plugins are.

A wheel carries them inside the package, under ``mmkd_plugins/.mim/``, as
MMDetection does (``mmdet/.mim/``), so a user who installed it with pip has
them without the repository. In a source checkout ``mmkd_plugins/.mim/``
holds relative symlinks to the repository's ``configs/``, ``tools/`` and
``model-index.yml``: an editable install and a wheel read the same layout,
and there is one copy of every file.
"""
import difflib
import glob
import os
import os.path as osp
from typing import List

#: The prefix that names a shipped config: ``mmkd_plugins::fgd/<name>.py``.
SCOPE = 'mmkd_plugins'


def package_root() -> str:
    """The folder that holds ``configs/``, ``tools/`` and ``model-index.yml``
    (``<site-packages>/mmkd_plugins/.mim`` once installed)."""
    return osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), '.mim')


def shipped_configs() -> List[str]:
    """Every shipped config, as ``<folder>/<name>.py`` relative to
    ``configs/``, ``_base_`` fragments left out."""
    root = osp.join(package_root(), 'configs')
    paths = glob.glob(osp.join(root, '**', '*.py'), recursive=True)
    names = (osp.relpath(p, root) for p in paths)
    return sorted(n for n in names if '_base_' not in n.split(os.sep))


def config_path(name: str) -> str:
    """Absolute path of a config shipped with mmkd_plugins.

    Args:
        name (str): ``'fgd/fgd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py'``,
            optionally with the ``mmkd_plugins::`` scope or ``configs/`` in
            front (as metafiles write it) and without ``.py``.

    Returns:
        str: The path, for ``Config.fromfile``, ``tools/train.py`` or a
        ``_base_`` list.

    Raises:
        FileNotFoundError: No such config; the message names the closest
            shipped ones.
    """
    rel = name[len(SCOPE) + 2:] if name.startswith(SCOPE + '::') else name
    if rel.startswith('configs/'):
        rel = rel[len('configs/'):]
    if not rel.endswith('.py'):
        rel += '.py'
    path = osp.join(package_root(), 'configs', rel)
    if osp.isfile(path):
        return path
    close = difflib.get_close_matches(rel, shipped_configs(), n=3, cutoff=0.4)
    hint = f'; closest: {close}' if close else ''
    raise FileNotFoundError(f'{name!r} is not a config shipped with mmkd_plugins '
                            f'(no {path}){hint}')


def tool_path(name: str) -> str:
    """Absolute path of a script shipped in ``tools/``, e.g.
    ``'make_demo_data.py'``."""
    path = osp.join(package_root(), 'tools', name)
    if not osp.isfile(path):
        raise FileNotFoundError(f'{name!r} is not a tool shipped with mmkd_plugins (no {path})')
    return path


def register_config_scope() -> None:
    """Let mmengine resolve ``mmkd_plugins::<folder>/<name>.py`` in a config's
    ``_base_`` list, as it resolves ``mmdet::``.

    mmengine 0.10 only knows OpenMMLab's own packages (its
    ``MODULE2PACKAGE`` table) and otherwise fails with "mmengine does not
    support to load mmkd_plugins config". The name is added to that table;
    mmengine then looks in the installed package's ``.mim/configs/``. That
    lookup goes through the installed distribution's location, so it works
    for a wheel install, not for an editable one, and only in a process that
    imported mmkd_plugins before parsing the config (``mmkd-train``,
    ``tools/train.py``), because ``_base_`` is read before ``custom_imports``.
    """
    from mmengine.config import utils
    utils.MODULE2PACKAGE.setdefault(SCOPE, SCOPE)
