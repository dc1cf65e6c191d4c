"""Helpers shared by the scripts in ``tools/`` (kept in the package so that
they are importable and tested)."""
import os.path as osp
import runpy
import sys


def mmdet_tool_path(name: str) -> str:
    """Path of one of MMDetection's own scripts shipped inside the package
    (``mmdet/.mim/tools/<name>``), e.g. ``'train.py'``."""
    import mmdet
    path = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', name)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'MMDetection script {path} not found: mmdet was installed without '
            'its tools (an editable source install keeps them in <repo>/tools)')
    return path


def run_mmdet_tool(name: str, argv=None) -> None:
    """Run MMDetection's ``tools/<name>`` as ``__main__`` with ``argv``, after
    importing mmkd_plugins so that its registries are filled even for a
    config without ``custom_imports``."""
    import mmkd_plugins  # noqa: F401
    path = mmdet_tool_path(name)
    sys.argv = [path] + list(sys.argv[1:] if argv is None else argv)
    runpy.run_path(path, run_name='__main__')
