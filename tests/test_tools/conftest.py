"""The scripts under tools/ are not a package: tests load them by path."""
import importlib.util
import os.path as osp

import pytest

TOOLS = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'tools')


@pytest.fixture
def load_tool():
    """``load_tool('benchmark_speed')`` -> the module ``tools/benchmark_speed.py``."""
    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, osp.join(TOOLS, f'{name}.py'))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return load
