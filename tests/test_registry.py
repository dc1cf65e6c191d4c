"""The mmkd_plugins scope: types built under it are MMDetection's and ours."""
import subprocess
import sys


def test_scope_builds_mmdet_and_plugin_types():
    """In a fresh process, so that no earlier test has filled MMDetection's
    registries by looking something up under its own scope."""
    code = """
import mmkd_plugins
from mmdet.registry import MODELS, TRANSFORMS
with MODELS.switch_scope_and_registry('mmkd_plugins') as models:
    assert models.scope == 'mmkd_plugins', models.scope
    assert models.get('RetinaNet').__module__.startswith('mmdet.models'), models.get('RetinaNet')
    assert models.get('DetectionDistiller').__module__.startswith('mmkd_plugins')
with TRANSFORMS.switch_scope_and_registry('mmkd_plugins') as transforms:
    assert transforms.get('PackDetInputs') is not None
    assert transforms.get('LoadImageFromFile') is not None
model = MODELS.build(dict(type='mmkd_plugins.ResNet', depth=18, base_channels=8))
assert type(model).__name__ == 'ResNet'
"""
    proc = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'WARNING' not in proc.stderr, proc.stderr[-3000:]
