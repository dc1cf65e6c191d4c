"""Every shipped config parses; every distiller config builds its model."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

from mmdet.registry import MODELS

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p)


def test_configs_exist():
    names = {osp.relpath(p, REPO) for p in CONFIGS}
    for method in ('retinanet', 'faster-rcnn', 'fcos', 'gfl'):
        assert any(n.startswith('configs/fgd/') and method in n and n.endswith('coco.py')
                   for n in names), method


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, REPO))
def test_config_builds(path):
    cfg = Config.fromfile(path)
    if cfg.model.type == 'DetectionDistiller':
        # No download here: the teacher stays random, everything else is checked.
        cfg.model.teacher_ckpt = None
        assert cfg.custom_imports['imports'] == ['mmkd_plugins']
    model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0
