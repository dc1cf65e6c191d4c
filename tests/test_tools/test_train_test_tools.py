"""Distillation configs run through MMDetection's own tools/train.py and
tools/test.py (shipped inside the mmdet package) as well as through ours."""
import os
import os.path as osp
import subprocess
import sys

import pytest
from conftest import distiller_cfg, runner_cfg

from mmkd_plugins.experiment import mmdet_tool_path

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def write_config(tmp_path, digits_root, work_dir):
    model = distiller_cfg()
    model['student']['test_cfg']['score_thr'] = 0.0  # an untrained student scores low
    cfg = runner_cfg(digits_root, work_dir, model, max_iters=2,
                     checkpoint_interval=2, val=True,
                     custom_imports=dict(imports=['mmkd_plugins'], allow_failed_imports=False),
                     test_dataloader=None, test_cfg=None, test_evaluator=None)
    cfg.log_level = 'INFO'  # the metrics are read from the log
    cfg.train_cfg.val_interval = 2
    cfg.test_dataloader, cfg.test_cfg, cfg.test_evaluator = (
        cfg.val_dataloader, cfg.val_cfg, cfg.val_evaluator)
    path = str(tmp_path / 'distill_tiny.py')
    cfg.dump(path)
    return path


def run(args, cwd):
    out = subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS='1'))
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    return out.stdout + out.stderr


@pytest.mark.parametrize('script', ['mmdet', 'ours'])
def test_train_then_test(tmp_path, digits_root, script):
    work_dir = str(tmp_path / 'work')
    config = write_config(tmp_path, digits_root, work_dir)
    train = mmdet_tool_path('train.py') if script == 'mmdet' else osp.join(REPO, 'tools', 'train.py')
    log = run([train, config, '--work-dir', work_dir], cwd=str(tmp_path))
    assert 'coco/bbox_mAP' in log
    ckpt = osp.join(work_dir, 'iter_2.pth')
    assert osp.isfile(ckpt)
    test = mmdet_tool_path('test.py') if script == 'mmdet' else osp.join(REPO, 'tools', 'test.py')
    log = run([test, config, ckpt, '--work-dir', str(tmp_path / 'test')], cwd=str(tmp_path))
    assert 'coco/bbox_mAP' in log
