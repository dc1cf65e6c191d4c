"""loss_weight_factor and DistillLossWeightHook."""
import math
import types

import pytest
import torch
from conftest import distiller_cfg, make_batch, tiny_retinanet
from mmengine.logging import MessageHub

from mmdet.registry import HOOKS, MODELS
from mmkd_plugins.hooks import DistillLossWeightHook, loss_weight_factor


@pytest.mark.parametrize('it,expected',
                         [(0, 0.2), (1, 0.4), (2, 0.6), (3, 0.8), (4, 1.0), (9, 1.0)])
def test_factor_warmup_only(it, expected):
    assert loss_weight_factor(it, 10, warmup_iters=4, warmup_ratio=0.2) == pytest.approx(expected)


def test_factor_defaults_are_constant_one():
    assert [loss_weight_factor(it, 5) for it in range(7)] == [1.0] * 7
    # warmup_ratio without warmup_iters does nothing.
    assert loss_weight_factor(0, 5, warmup_ratio=0.3) == 1.0


@pytest.mark.parametrize('it,expected', [
    (0, 1.0), (2, 1.0), (3, 0.75), (4, 0.5), (5, 0.25), (6, 0.0), (8, 0.0)])
def test_factor_linear_decay(it, expected):
    # From 1 at decay_begin=2 down to 0 at max_iters=6; clamped after it.
    assert loss_weight_factor(it, 6, decay='linear', decay_begin=2) == pytest.approx(expected)


def test_factor_linear_decay_to_end_factor():
    got = [loss_weight_factor(it, 4, decay='linear', end_factor=0.2) for it in range(5)]
    assert got == pytest.approx([1.0, 0.8, 0.6, 0.4, 0.2])


@pytest.mark.parametrize('it,expected', [
    (0, 1.0), (1, 0.5 * (1 + math.cos(math.pi / 4))), (2, 0.5),
    (3, 0.5 * (1 + math.cos(3 * math.pi / 4))), (4, 0.0), (5, 0.0)])
def test_factor_cosine_decay(it, expected):
    assert loss_weight_factor(it, 4, decay='cosine') == pytest.approx(expected, abs=1e-12)


def test_factor_cosine_decay_with_end_factor():
    # Half-way the cosine is 0.5: 0.1 + 0.9 * 0.5.
    assert loss_weight_factor(6, 10, decay='cosine', decay_begin=2, end_factor=0.1) == \
        pytest.approx(0.55)


def test_factor_warmup_and_decay_multiply():
    kwargs = dict(warmup_iters=4, warmup_ratio=0.0, decay='linear', decay_begin=0)
    got = [loss_weight_factor(it, 8, **kwargs) for it in range(9)]
    expected = [0.0, 0.25 * 0.875, 0.5 * 0.75, 0.75 * 0.625, 0.5, 0.375, 0.25, 0.125, 0.0]
    assert got == pytest.approx(expected)


def test_factor_no_decay_when_decay_begins_at_the_end():
    assert loss_weight_factor(7, 5, decay='linear', decay_begin=5) == 1.0
    assert loss_weight_factor(7, 5, decay='cosine', decay_begin=9) == 1.0


@pytest.mark.parametrize('kwargs,match', [
    (dict(warmup_iters=-1), r'warmup_iters must be an int >= 0, got -1'),
    (dict(warmup_iters=2.5), r'warmup_iters must be an int >= 0, got 2.5'),
    (dict(warmup_ratio=1.5), r'warmup_ratio must be in \[0, 1\], got 1.5'),
    (dict(warmup_ratio=-0.1), r'warmup_ratio must be in \[0, 1\], got -0.1'),
    (dict(decay='step'), r"decay must be one of \(None, 'linear', 'cosine'\), got 'step'"),
    (dict(decay_begin=-1), r'decay_begin must be >= 0, got -1'),
    (dict(end_factor=-0.5), r'end_factor must be >= 0, got -0.5'),
])
def test_hook_constructor_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DistillLossWeightHook(**kwargs)


@pytest.fixture(scope='module')
def distiller():
    return MODELS.build(distiller_cfg())


def fake_runner(model, it, max_iters, hub_name):
    return types.SimpleNamespace(model=model, iter=it, max_iters=max_iters, epoch=0,
                                 message_hub=MessageHub.get_instance(hub_name))


def test_hook_sets_scale_and_logs_it(distiller):
    hook = HOOKS.build(dict(type='DistillLossWeightHook', warmup_iters=2, warmup_ratio=0.5,
                            decay='linear', decay_begin=2, end_factor=0.0))
    expected = [0.5, 0.75, 1.0, 0.5]
    seen = []
    for it in range(4):
        runner = fake_runner(distiller, it, 4, 'weight_hook_log')
        hook.before_train_iter(runner, batch_idx=it)
        assert distiller.distill_loss_scale == pytest.approx(expected[it])
        buffer = runner.message_hub.get_scalar('train/distill_scale')
        assert buffer.current() == pytest.approx(expected[it])
        seen.append(buffer.current())
    assert seen == pytest.approx(expected)
    assert list(runner.message_hub.get_scalar('train/distill_scale').data[0]) == \
        pytest.approx(expected)


def test_hook_is_right_after_resume(distiller):
    hook = DistillLossWeightHook(decay='cosine')
    distiller.distill_loss_scale = 1.0
    hook.before_train_iter(fake_runner(distiller, 4, 6, 'weight_hook_resume'), batch_idx=0)
    # 0.5 * (1 + cos(pi * 4 / 6)), computed from runner.iter alone.
    assert distiller.distill_loss_scale == pytest.approx(0.25)


def test_hook_scale_multiplies_the_distillation_loss(distiller):
    distiller.train()
    data = make_batch(distiller, seed=3)
    distiller.distill_loss_scale = 1.0
    full = distiller(**data, mode='loss')['loss_fgd']
    hook = DistillLossWeightHook(warmup_iters=4, warmup_ratio=0.0)
    hook.before_train_iter(fake_runner(distiller, 1, 10, 'weight_hook_effect'), batch_idx=1)
    assert distiller.distill_loss_scale == pytest.approx(0.25)
    scaled = distiller(**data, mode='loss')['loss_fgd']
    assert full > 0
    torch.testing.assert_close(scaled, full * 0.25)
    distiller.distill_loss_scale = 1.0


def test_hook_needs_a_distiller():
    runner = fake_runner(MODELS.build(tiny_retinanet()), 0, 4, 'weight_hook_type')
    match = (r'DistillLossWeightHook needs model.type="DetectionDistiller", '
             r'but the runner trains a RetinaNet')
    with pytest.raises(TypeError, match=match):
        DistillLossWeightHook().before_train_iter(runner, batch_idx=0)
