"""DistillStopHook: distillation off from stop_iter / stop_epoch on."""
import types

import pytest
from conftest import distiller_cfg, tiny_retinanet

from mmdet.registry import HOOKS, MODELS
from mmkd_plugins.hooks import DistillStopHook


class Logger:
    def __init__(self):
        self.messages = []

    def info(self, msg):
        self.messages.append(msg)


@pytest.fixture(scope='module')
def distiller():
    return MODELS.build(distiller_cfg())


def fake_runner(model, it=0, epoch=0):
    return types.SimpleNamespace(model=model, iter=it, epoch=epoch, logger=Logger())


def run_iters(hook, model, iters, epoch_of=lambda it: 0):
    runner = fake_runner(model)
    hook.before_train(runner)
    enabled = []
    for it in iters:
        runner.iter, runner.epoch = it, epoch_of(it)
        hook.before_train_iter(runner, batch_idx=it)
        enabled.append(model.distill_enabled)
    return enabled, runner.logger.messages


def test_stops_exactly_at_stop_iter(distiller):
    distiller.distill_enabled = True
    hook = HOOKS.build(dict(type='DistillStopHook', stop_iter=3))
    enabled, messages = run_iters(hook, distiller, range(6))
    assert enabled == [True, True, True, False, False, False]
    assert messages == ['DistillStopHook: distillation stopped at epoch 0, iteration 3']


def test_stops_exactly_at_stop_epoch(distiller):
    distiller.distill_enabled = True
    hook = DistillStopHook(stop_epoch=2)
    # 3 iterations per epoch, epochs 0-3.
    enabled, messages = run_iters(hook, distiller, range(12), epoch_of=lambda it: it // 3)
    assert enabled == [True] * 6 + [False] * 6
    assert messages == ['DistillStopHook: distillation stopped at epoch 2, iteration 6']


def test_stop_iter_zero_never_distils(distiller):
    distiller.distill_enabled = True
    enabled, messages = run_iters(DistillStopHook(stop_iter=0), distiller, range(2))
    assert enabled == [False, False] and len(messages) == 1


@pytest.mark.parametrize('start,expected', [(5, [False, False]), (1, [True, True]),
                                            (2, [True, False])])
def test_right_for_a_resumed_runner(distiller, start, expected):
    # A freshly built model resumes at `start`: the state follows runner.iter.
    distiller.distill_enabled = True
    enabled, _ = run_iters(DistillStopHook(stop_iter=3), distiller, range(start, start + 2))
    assert enabled == expected


def test_reenabled_when_resuming_before_the_stop(distiller):
    # Whatever state the model was left in, the runner's position decides.
    distiller.distill_enabled = False
    enabled, messages = run_iters(DistillStopHook(stop_iter=3), distiller, [1])
    assert enabled == [True] and messages == []


def test_resumed_epoch_based_runner(distiller):
    distiller.distill_enabled = True
    enabled, messages = run_iters(DistillStopHook(stop_epoch=1), distiller, [40],
                                  epoch_of=lambda it: 4)
    assert enabled == [False]
    assert messages == ['DistillStopHook: distillation stopped at epoch 4, iteration 40']


@pytest.mark.parametrize('kwargs,match', [
    (dict(), r'exactly one of stop_epoch and stop_iter, got stop_epoch=None, stop_iter=None'),
    (dict(stop_epoch=1, stop_iter=5), r'exactly one of stop_epoch and stop_iter, '
                                      r'got stop_epoch=1, stop_iter=5'),
    (dict(stop_iter=-1), r'stop_iter must be an int >= 0, got -1'),
    (dict(stop_epoch=-2), r'stop_epoch must be an int >= 0, got -2'),
    (dict(stop_epoch=1.5), r'stop_epoch must be an int >= 0, got 1.5'),
])
def test_constructor_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DistillStopHook(**kwargs)


def test_needs_a_distiller():
    runner = fake_runner(MODELS.build(tiny_retinanet()))
    hook = DistillStopHook(stop_iter=1)
    match = (r'DistillStopHook needs model.type="DetectionDistiller", '
             r'but the runner trains a RetinaNet')
    with pytest.raises(TypeError, match=match):
        hook.before_train(runner)
    with pytest.raises(TypeError, match=match):
        hook.before_train_iter(runner, batch_idx=0)
