"""Distillation configs run through MMDetection's own tools/train.py and
tools/test.py (shipped inside the mmdet package) as well as through ours; a
data-free one too, whose exported student plain MMDetection tests."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch
from conftest import data_free_cfg, data_free_runner_cfg, distiller_cfg, runner_cfg
from mmengine.config import Config

from mmkd_plugins.compat import load_checkpoint_file
from mmkd_plugins.experiment import mmdet_tool_path
from mmkd_plugins.export import export_student

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


def tool(script, name):
    """MMDetection's own copy of ``tools/<name>`` (``script='mmdet'``) or ours."""
    return mmdet_tool_path(name) if script == 'mmdet' else osp.join(REPO, 'tools', name)


@pytest.mark.parametrize('script', ['mmdet', 'ours'])
def test_train_then_test(tmp_path, digits_root, script):
    work_dir = str(tmp_path / 'work')
    config = write_config(tmp_path, digits_root, work_dir)
    train = tool(script, 'train.py')
    log = run([train, config, '--work-dir', work_dir], cwd=str(tmp_path))
    assert 'coco/bbox_mAP' in log
    ckpt = osp.join(work_dir, 'iter_2.pth')
    assert osp.isfile(ckpt)
    test = tool(script, 'test.py')
    log = run([test, config, ckpt, '--work-dir', str(tmp_path / 'test')], cwd=str(tmp_path))
    assert 'coco/bbox_mAP' in log


def write_data_free_config(tmp_path, digits_root, work_dir):
    """Two data-free iterations on tiny models; validation and test on the
    tiny digits data (the real images, which the student never trained on)."""
    real = runner_cfg(digits_root, work_dir, data_free_cfg(), max_iters=2, val=True)
    cfg = data_free_runner_cfg(work_dir, 2, 'df_tools', log_level='INFO',
                               custom_imports=dict(imports=['mmkd_plugins'],
                                                   allow_failed_imports=False))
    cfg.model.student.test_cfg.score_thr = 0.0  # an untrained student scores low
    cfg.update(val_dataloader=real.val_dataloader, val_cfg=real.val_cfg,
               val_evaluator=real.val_evaluator, test_dataloader=real.val_dataloader,
               test_cfg=dict(type='TestLoop'), test_evaluator=real.val_evaluator)
    cfg.train_cfg.val_interval = 2
    path = str(tmp_path / 'data_free_tiny.py')
    cfg.dump(path)
    return path


@pytest.mark.parametrize('script', ['mmdet', 'ours'])
def test_data_free_train_export_and_test_with_plain_mmdet(tmp_path, digits_root, script):
    work_dir = str(tmp_path / 'work')
    config = write_data_free_config(tmp_path, digits_root, work_dir)
    train = tool(script, 'train.py')
    log = run([train, config, '--work-dir', work_dir], cwd=str(tmp_path))
    assert 'g_loss_bn' in log and 'kept_frac' in log  # both steps ran and logged
    assert 'coco/bbox_mAP' in log                      # validated on the real images
    ckpt = osp.join(work_dir, 'iter_2.pth')
    saved = load_checkpoint_file(ckpt, map_location='cpu')
    assert set(saved['optimizer']) == {'student', 'generator'}
    assert osp.isfile(osp.join(work_dir, 'generated', 'grid.png'))
    if script == 'ours':
        return  # the export below is the same for both

    out = export_student(config, ckpt, str(tmp_path / 'export'))
    exported = Config.fromfile(out['config'])
    assert exported.model.type == 'RetinaNet'
    for key in ('train_dataloader', 'train_cfg', 'optim_wrapper', 'param_scheduler',
                'custom_imports'):
        assert key not in exported, key
    assert 'mmkd_plugins' not in open(out['config']).read()
    weights = torch.load(out['checkpoint'], weights_only=True)['state_dict']
    assert not any(k.startswith(('generator', 'data_free')) for k in weights)
    assert weights.keys() == {k[len('student.'):] for k in saved['state_dict']
                              if k.startswith('student.')}

    # MMDetection's own tools/test.py, in a process where mmkd_plugins cannot
    # be imported at all.
    code = (f"import sys, runpy\nsys.modules['mmkd_plugins'] = None\n"
            f"sys.argv = ['test.py', {out['config']!r}, {out['checkpoint']!r}, "
            f"'--work-dir', {str(tmp_path / 'test')!r}]\n"
            f"runpy.run_path({mmdet_tool_path('test.py')!r}, run_name='__main__')\n")
    log = run(['-c', code], cwd=str(tmp_path))
    assert 'coco/bbox_mAP' in log
