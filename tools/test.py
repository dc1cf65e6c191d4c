"""Evaluate a checkpoint; for a distiller this is the student.

Takes exactly MMDetection's ``tools/test.py`` arguments::

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--show-dir DIR]
"""
from mmkd_plugins.experiment import run_mmdet_tool

if __name__ == '__main__':
    run_mmdet_tool('test.py')
