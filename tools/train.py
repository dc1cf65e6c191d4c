"""Train a model (a distiller or a plain detector) from a config.

Takes exactly MMDetection's ``tools/train.py`` arguments (it runs that script
after importing mmkd_plugins); CONFIG may also name a shipped config as
``mmkd_plugins::<folder>/<name>.py``. Installed, the same is ``mmkd-train``::

    python tools/train.py configs/fgd/fgd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py --amp
    python tools/train.py mmkd_plugins::demo/retinanet_r18-w16_digits.py --resume
"""
from mmkd_plugins.cli import train

if __name__ == '__main__':
    train()
