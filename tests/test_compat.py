"""The restricted checkpoint loader of mmkd_plugins.compat: mmengine's
checkpoints load (teacher and --resume), pickled code never runs."""
import os
import os.path as osp
import pickle

import numpy as np
import pytest
import torch
from conftest import distiller_cfg, runner_cfg, tiny_retinanet
from mmengine.hooks import Hook
from mmengine.logging import HistoryBuffer, MessageHub
from mmengine.runner import Runner
from mmengine.runner.checkpoint import _load_checkpoint

from mmdet.registry import MODELS
from mmkd_plugins.compat import load_checkpoint_file


def save_mmengine_checkpoint(path, state_dict, hub_name):
    """A checkpoint shaped like CheckpointHook's: numpy scalars and arrays in
    ``meta``, HistoryBuffers in ``message_hub``."""
    hub = MessageHub.get_instance(hub_name)
    hub.update_scalar('train/loss', 1.5)
    hub.update_scalar('train/loss', np.float32(2.5))
    hub.update_scalar('train/lr', np.float64(0.01))
    hub.update_info('iter', 7)
    ckpt = dict(
        meta=dict(seed=np.int64(3), epoch=0, iter=7, mmengine_version='0.10.7',
                  hist=np.arange(4, dtype=np.int32), ratio=np.float64(0.5),
                  dataset_meta=dict(classes=('0', '1'))),
        state_dict=state_dict,
        message_hub=hub.state_dict())
    torch.save(ckpt, path)
    return ckpt


def test_loads_mmengine_checkpoint_that_torch_refuses(tmp_path):
    model = MODELS.build(tiny_retinanet())
    path = str(tmp_path / 'iter_7.pth')
    saved = save_mmengine_checkpoint(path, model.state_dict(), 'compat_load')

    # The problem is real: torch 2.13 defaults to weights_only=True.
    with pytest.raises(pickle.UnpicklingError, match='Weights only load failed'):
        torch.load(path)

    for ckpt in (load_checkpoint_file(path, map_location='cpu'),
                 _load_checkpoint(path, map_location='cpu')):  # mmengine's entry
        assert ckpt['state_dict'].keys() == saved['state_dict'].keys()
        for key, value in saved['state_dict'].items():
            assert torch.equal(ckpt['state_dict'][key], value), key
        meta = ckpt['meta']
        assert meta['seed'] == 3 and isinstance(meta['seed'], np.int64)
        assert isinstance(meta['hist'], np.ndarray) and meta['hist'].dtype == np.int32
        np.testing.assert_array_equal(meta['hist'], np.arange(4))
        assert meta['ratio'] == 0.5 and meta['dataset_meta'] == dict(classes=('0', '1'))
        buffer = ckpt['message_hub']['log_scalars']['train/loss']
        assert isinstance(buffer, HistoryBuffer)
        assert buffer.mean() == pytest.approx(2.0) and buffer.current() == pytest.approx(2.5)
        assert ckpt['message_hub']['runtime_info']['iter'] == 7
        # The restored hub works as mmengine's resume uses it.
        hub = MessageHub.get_instance('compat_load_restored')
        hub.load_state_dict(ckpt['message_hub'])
        assert hub.get_scalar('train/loss').max() == pytest.approx(2.5)


class _System:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def test_refuses_pickled_code_and_does_not_run_it(tmp_path):
    marker = tmp_path / 'pwned'
    path = str(tmp_path / 'evil.pth')
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'meta': _System(f'touch {marker}')}, path)

    with pytest.raises(pickle.UnpicklingError, match=r"global '(posix|os|nt)\.system'"):
        load_checkpoint_file(path)
    with pytest.raises(pickle.UnpicklingError, match=r"global '(posix|os|nt)\.system'"):
        _load_checkpoint(path, map_location='cpu')
    assert not marker.exists()

    # The payload is armed: an unrestricted load does run it.
    torch.load(path, weights_only=False)
    assert marker.exists()


class _GetAttr:
    def __init__(self, obj, name):
        self.obj, self.name = obj, name

    def __reduce__(self):
        return getattr, (self.obj, self.name)


@pytest.mark.parametrize('obj,name', [
    (HistoryBuffer, '__init__'),
    (HistoryBuffer, '_statistics_methods'),
    (HistoryBuffer, 'register_statistics'),
    ('a string', '__class__'),
    (torch.Tensor, 'mean'),
])
def test_getattr_only_on_history_buffer_statistics(tmp_path, obj, name):
    path = str(tmp_path / 'getattr.pth')
    torch.save({'meta': _GetAttr(obj, name)}, path)
    with pytest.raises(pickle.UnpicklingError, match=rf"getattr\(.*'{name}'\)"):
        load_checkpoint_file(path)


def test_getattr_on_history_buffer_statistic_is_allowed(tmp_path):
    path = str(tmp_path / 'stat.pth')
    torch.save({'meta': _GetAttr(HistoryBuffer, 'mean')}, path)
    assert load_checkpoint_file(path)['meta'] is HistoryBuffer.mean


def test_missing_file_is_named(tmp_path):
    missing = str(tmp_path / 'nope.pth')
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        load_checkpoint_file(missing)


# -- resume equivalence -------------------------------------------------------
class _Recorder(Hook):
    """Records the iterations run and the state found right after resume."""
    priority = 'VERY_LOW'

    def __init__(self):
        self.iters = []
        self.start = None

    def before_train(self, runner):
        optimizer = runner.optim_wrapper.optimizer
        momentum = {name: optimizer.state[p]['momentum_buffer'].clone()
                    for name, p in runner.model.named_parameters()
                    if p in optimizer.state and 'momentum_buffer' in optimizer.state[p]}
        loss = runner.message_hub.log_scalars.get('train/loss')
        self.start = dict(iter=runner.iter, momentum=momentum,
                          losses=None if loss is None else loss.data[0].tolist())

    def before_train_iter(self, runner, batch_idx, data_batch=None):
        self.iters.append(runner.iter)


def _train(cfg):
    runner = Runner.from_cfg(cfg)
    recorder = _Recorder()
    runner.register_hook(recorder)
    runner.train()
    return runner, recorder


def test_resume_equals_uninterrupted_training(tmp_path, digits_root, fast_runner):
    # A teacher checkpoint in mmengine's format: plain torch.load refuses it.
    teacher_cfg = tiny_retinanet(width=16, fpn=32)
    torch.manual_seed(1)
    teacher = MODELS.build(teacher_cfg)
    teacher_ckpt = str(tmp_path / 'teacher.pth')
    save_mmengine_checkpoint(teacher_ckpt, teacher.state_dict(), 'compat_teacher')
    with pytest.raises(pickle.UnpicklingError, match='Weights only load failed'):
        torch.load(teacher_ckpt)
    model = distiller_cfg(teacher=teacher_cfg, teacher_ckpt=teacher_ckpt)

    def cfg(name, max_iters, **extra):
        return runner_cfg(digits_root, str(tmp_path / name), model, max_iters=max_iters,
                          checkpoint_interval=2, experiment_name=f'compat_resume_{name}',
                          **extra)

    runner_a, rec_a = _train(cfg('a', 4))
    assert rec_a.iters == [0, 1, 2, 3] and runner_a.iter == 4
    # The teacher came from the file, through the restricted loader.
    for key, value in teacher.state_dict().items():
        assert torch.equal(runner_a.model.teacher.state_dict()[key], value), key

    _, rec_b1 = _train(cfg('b', 2))
    assert rec_b1.iters == [0, 1]
    ckpt_2 = str(tmp_path / 'b' / 'iter_2.pth')
    with pytest.raises(pickle.UnpicklingError, match='Weights only load failed'):
        torch.load(ckpt_2)  # what --resume would hit without mmkd_plugins
    saved = load_checkpoint_file(ckpt_2, map_location='cpu')

    runner_b, rec_b = _train(cfg('b2', 4, resume=True, load_from=ckpt_2))
    # B really resumed: iteration, optimizer state and message hub come from
    # the checkpoint.
    assert rec_b.start['iter'] == 2 and rec_b.iters == [2, 3] and runner_b.iter == 4
    momentum = rec_b.start['momentum']
    assert len(momentum) == len(saved['optimizer']['state']) > 0
    saved_momentum = [s['momentum_buffer'] for s in saved['optimizer']['state'].values()]
    for (name, value), expected in zip(momentum.items(), saved_momentum):
        assert torch.equal(value, expected), name
    saved_losses = saved['message_hub']['log_scalars']['train/loss'].data[0].tolist()
    assert rec_b.start['losses'] == saved_losses
    assert len(rec_b.start['losses']) == 2

    state_a, state_b = runner_a.model.state_dict(), runner_b.model.state_dict()
    assert state_a.keys() == state_b.keys()
    assert any(k.startswith('adapters.') for k in state_a)
    moved = False
    for key, value in state_a.items():
        torch.testing.assert_close(state_b[key], value, atol=1e-6, rtol=1e-5, msg=key)
        moved |= not torch.equal(value, saved['state_dict'][key])
    assert moved  # iterations 2-3 did change the weights after the checkpoint
    for key in ('iter_2.pth', 'iter_4.pth'):
        assert osp.isfile(tmp_path / 'a' / key)
