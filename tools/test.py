"""Evaluate a checkpoint; for a distiller this is the student.

Takes exactly MMDetection's ``tools/test.py`` arguments; CONFIG may also name
a shipped config as ``mmkd_plugins::<folder>/<name>.py``. Installed, the same
is ``mmkd-test``::

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--show-dir DIR]
"""
from mmkd_plugins.cli import test

if __name__ == '__main__':
    test()
