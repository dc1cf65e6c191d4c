"""Train a model (a distiller or a plain detector) from a config.

Takes exactly MMDetection's ``tools/train.py`` arguments (it runs that script
after importing mmkd_plugins), e.g.::

    python tools/train.py configs/fgd/fgd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py --amp
    python tools/train.py CONFIG --resume
"""
from mmkd_plugins.experiment import run_mmdet_tool

if __name__ == '__main__':
    run_mmdet_tool('train.py')
