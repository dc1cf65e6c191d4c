"""GroupDRODistiller: the weight update, the objective, logging, errors and
the weights' round trip through checkpoints and --resume."""
import json
import math
import os.path as osp
from collections import Counter

import pytest
import torch
from conftest import distiller_cfg, fake_group_steps, group_batch, runner_cfg
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmdet.registry import MODELS
from mmkd_plugins.compat import load_checkpoint_file
from mmkd_plugins.distillers import GroupDRO, SingleView
from mmkd_plugins.distillers import groups as groups_module
from mmkd_plugins.distillers.group_dro_distiller import (exponentiated_gradient_step,
                                                          group_adjustment, standardise)

GROUPS = ['plain', 'gradient', 'texture', 'photo']  # stored sorted:
SORTED = ['gradient', 'photo', 'plain', 'texture']


def dro_cfg(**kwargs):
    cfg = distiller_cfg()
    cfg.update(type='GroupDRODistiller', groups=GROUPS, step_size=0.5)
    cfg.update(kwargs)
    return cfg


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    return MODELS.build(dro_cfg())


@pytest.fixture
def dro(model):
    """The module's model, in training mode with uniform weights."""
    model.train()
    model.group_weights.fill_(0.25)
    return model


# -- the update rule ----------------------------------------------------------
def test_exponentiated_gradient_step_by_hand():
    q = torch.tensor([0.1, 0.2, 0.3, 0.4])
    losses = torch.tensor([1.0, 2.0, 99.0, 3.0])
    present = torch.tensor([True, True, False, True])
    new = exponentiated_gradient_step(q, losses, present, step_size=0.5)
    # q_g e^{eta l_g}, rescaled to the present groups' mass 0.7.
    raw = [0.1 * math.exp(0.5), 0.2 * math.exp(1.0), 0.4 * math.exp(1.5)]
    expected = [0.7 * r / sum(raw) for r in raw]
    torch.testing.assert_close(new[[0, 1, 3]], torch.tensor(expected))
    assert new[2] == q[2]  # absent: unchanged, whatever its loss
    torch.testing.assert_close(new.sum(), torch.tensor(1.0))


def test_weights_stay_a_distribution_and_absent_groups_keep_theirs():
    gen = torch.Generator().manual_seed(0)
    q = torch.full((5,), 0.2)
    moved = False
    for _ in range(500):
        present = torch.rand(5, generator=gen) < 0.5
        losses = torch.rand(5, generator=gen) * 20  # large eta * l: no overflow
        new = exponentiated_gradient_step(q, losses, present, step_size=2.0)
        assert torch.isfinite(new).all() and (new >= 0).all()
        assert abs(new.sum().item() - 1) < 1e-5
        assert torch.equal(new[~present], q[~present])
        moved |= not torch.equal(new, q)
        q = new
    assert moved


# -- the signal and the adjustment, as pure functions --------------------------
def test_group_adjustment_by_hand():
    counts = torch.tensor([100.0, 4.0, 25.0, 1.0])
    torch.testing.assert_close(group_adjustment(counts, 2.0),
                               torch.tensor([0.2, 1.0, 0.4, 2.0]))
    assert torch.equal(group_adjustment(counts, 0.0), torch.zeros(4))


def test_standardise_by_hand():
    # Two terms (rows), four groups; the last group is absent.
    values = torch.tensor([[1.0, 3.0, 5.0, 99.0], [10.0, 30.0, 20.0, 99.0]])
    present = torch.tensor([True, True, True, False])
    z, moments = standardise(values, present, torch.zeros(2, 3, dtype=torch.float64), 0.5)
    # Step 1: the moving averages are half this step's moments, and the
    # weight 0.5 undoes the halving: mean 3, E[x^2] = 35/3, var 8/3 (term 0);
    # mean 20, E[x^2] = 1400/3, var 200/3 (term 1).
    torch.testing.assert_close(moments, torch.tensor(
        [[1.5, 35 / 6, 0.5], [10.0, 700 / 3, 0.5]], dtype=torch.float64))
    s0, s1 = math.sqrt(8 / 3), math.sqrt(200 / 3)
    torch.testing.assert_close(z, torch.tensor(
        [[-2 / s0, 0.0, 2 / s0, 0.0], [-10 / s1, 10 / s1, 0.0, 0.0]], dtype=torch.float64))
    # Step 2, two groups: term 0 sees 2 and 4, term 1 sees 10 twice.
    values = torch.tensor([[2.0, 4.0, 0.0, 0.0], [10.0, 10.0, 0.0, 0.0]])
    present = torch.tensor([True, True, False, False])
    z, moments = standardise(values, present, moments, 0.5)
    # term 0: (1.5 + 3) / 2 = 2.25, (35/6 + 10) / 2 = 95/12, weight 0.75:
    # mean 3, E[x^2] = 95/9, var 14/9; term 1: mean 40/3, E[x^2] = 2000/9,
    # var 400/9.
    torch.testing.assert_close(moments, torch.tensor(
        [[2.25, 95 / 12, 0.75], [10.0, 500 / 3, 0.75]], dtype=torch.float64))
    s0, s1 = math.sqrt(14 / 9), math.sqrt(400 / 9)
    torch.testing.assert_close(z, torch.tensor(
        [[-1 / s0, 1 / s0, 0.0, 0.0], [(10 - 40 / 3) / s1] * 2 + [0.0, 0.0]],
        dtype=torch.float64))


def test_standardise_gives_zero_without_spread():
    values = torch.tensor([[20.0, 20.0, 7.0], [3.0, 1.0, 2.0]])
    present = torch.tensor([True, True, False])
    z, moments = standardise(values, present, torch.zeros(2, 3, dtype=torch.float64), 0.99)
    assert torch.equal(z[0], torch.zeros(3, dtype=torch.float64))  # identical: no scale
    assert z[1, 0] == pytest.approx(1.0) and z[1, 1] == pytest.approx(-1.0)
    # One group alone on the first step: no spread for either term.
    z, _ = standardise(values, torch.tensor([False, False, True]),
                       torch.zeros(2, 3, dtype=torch.float64), 0.99)
    assert torch.equal(z, torch.zeros(2, 3, dtype=torch.float64))


# -- the distiller's loss -----------------------------------------------------
# Fake group losses (detection, distillation); gradient is absent from the batch.
LOSSES = {'plain': (1.0, 0.5), 'photo': (2.0, 1.0), 'texture': (0.2, 0.1), 'gradient': (9.0, 9.0)}
# The signal each choice gives the present groups.
SIGNAL_BY_HAND = {'detection': {'photo': 2.0, 'plain': 1.0, 'texture': 0.2},
                  'distillation': {'photo': 1.0, 'plain': 0.5, 'texture': 0.1},
                  'sum': {'photo': 3.0, 'plain': 1.5, 'texture': 0.3}}


@pytest.mark.parametrize('signal', sorted(SIGNAL_BY_HAND))
def test_loss_updates_weights_and_weights_the_objective(dro, monkeypatch, signal):
    monkeypatch.setattr(dro, 'objective', GroupDRO(GROUPS, step_size=0.5, signal=signal))
    calls = []
    weight = fake_group_steps(monkeypatch, LOSSES, calls)
    start = torch.tensor([0.1, 0.2, 0.3, 0.4])  # gradient photo plain texture
    dro.group_weights.copy_(start)
    data = group_batch(dro, ['plain', 'photo', 'plain', 'texture', 'photo'])
    img_ids = [s.metainfo['img_id'] for s in data['data_samples']]
    out = dro.loss(**data)

    # One step per present group, in sorted order, on its images only:
    # the sub-batches partition the batch.
    assert calls == [(2, [img_ids[1], img_ids[4]]), (2, [img_ids[0], img_ids[2]]),
                     (1, [img_ids[3]])]
    # q follows the chosen signal s_g: q_g e^{0.5 s_g}, rescaled to mass 0.9.
    s = SIGNAL_BY_HAND[signal]
    raw = {'photo': 0.2 * math.exp(0.5 * s['photo']), 'plain': 0.3 * math.exp(0.5 * s['plain']),
           'texture': 0.4 * math.exp(0.5 * s['texture'])}
    expected = {g: 0.9 * r / sum(raw.values()) for g, r in raw.items()}
    expected['gradient'] = 0.1
    for g in SORTED:
        assert out[f'gq_{g}'].item() == pytest.approx(expected[g], rel=1e-6)
        assert dro.group_weights[SORTED.index(g)].item() == pytest.approx(expected[g], rel=1e-6)
    assert torch.equal(dro.group_weights[0], start[0])  # absent: exactly its old weight
    # Logged for the present groups only: the loss, its two parts, the signal.
    assert not any(k.endswith('_gradient') for k in out if k != 'gq_gradient')
    for g in ('photo', 'plain', 'texture'):
        det, dist = LOSSES[g]
        assert out[f'gl_{g}'].item() == pytest.approx(det + dist)
        assert out[f'gdet_{g}'].item() == pytest.approx(det)
        assert out[f'gdist_{g}'].item() == pytest.approx(dist)
        assert out[f'gsig_{g}'].item() == pytest.approx(s[g])
    # Objective: the group *losses* l_g = det + dist whatever the signal,
    # with the updated weights renormalised over the present groups.
    objective = sum(expected[g] * l for g, l in (('photo', 3.0), ('plain', 1.5),
                                                  ('texture', 0.3))) / 0.9
    assert out['loss_group_dro'].item() == pytest.approx(objective, rel=1e-6)
    # mmengine sums exactly the objective; parts and diagnostics are logged.
    total, log_vars = dro.parse_losses(out)
    assert total.item() == pytest.approx(objective, rel=1e-6)
    assert [k for k in log_vars if 'loss' in k] == ['loss', 'loss_group_dro']
    assert log_vars['part_cls'] + log_vars['part_fgd'] == pytest.approx(total.item())
    assert log_vars['acc'].item() == pytest.approx(50.0)
    # The gradient goes through the weighted objective.
    total.backward()
    assert weight.grad.item() == pytest.approx(objective, rel=1e-6)


def test_adjustment_adds_c_over_sqrt_n_to_the_signal_only(dro, monkeypatch):
    counts = {'gradient': 900, 'photo': 4, 'plain': 100, 'texture': 25}
    monkeypatch.setattr(dro, 'objective', GroupDRO(GROUPS, step_size=0.5, adjustment=2.0,
                                                   group_counts=counts))
    fake_group_steps(monkeypatch, LOSSES)
    out = dro.loss(**group_batch(dro, ['plain', 'photo', 'texture']))
    # detection signal + 2 / sqrt(n_g): photo 2 + 1, plain 1 + 0.2, texture 0.2 + 0.4
    s = {'photo': 3.0, 'plain': 1.2, 'texture': 0.6}
    raw = {g: 0.25 * math.exp(0.5 * v) for g, v in s.items()}
    for g, v in s.items():
        assert out[f'gsig_{g}'].item() == pytest.approx(v)
        assert out[f'gq_{g}'].item() == pytest.approx(0.75 * raw[g] / sum(raw.values()),
                                                      rel=1e-6)
    # The objective weights the unadjusted losses.
    q = {g: out[f'gq_{g}'].item() for g in s}
    loss = {g: sum(LOSSES[g]) for g in s}
    assert out['loss_group_dro'].item() == pytest.approx(
        sum(q[g] * loss[g] for g in s) / sum(q.values()), rel=1e-6)


def test_adjustment_needs_the_group_counts(dro, monkeypatch):
    objective = GroupDRO(GROUPS, adjustment=1.0)
    monkeypatch.setattr(dro, 'objective', objective)
    fake_group_steps(monkeypatch, LOSSES)
    with pytest.raises(RuntimeError, match=r"GroupDRO\(adjustment=1\) needs each group's "
                                           r"number of training images n_g: add "
                                           r"dict\(type='GroupCountsHook'\)"):
        dro.loss(**group_batch(dro, ['plain', 'photo']))
    # Handed over (as GroupCountsHook does), they are used.
    objective.set_group_counts({'gradient': 1, 'photo': 1, 'plain': 4, 'texture': 9})
    out = dro.loss(**group_batch(dro, ['plain', 'photo']))
    assert out['gsig_plain'].item() == pytest.approx(1.0 + 0.5)
    assert out['gsig_photo'].item() == pytest.approx(2.0 + 1.0)


def test_group_counts_from_the_config_must_match_the_data():
    objective = GroupDRO(GROUPS, adjustment=1.0,
                         group_counts={'gradient': 1, 'photo': 2, 'plain': 3, 'texture': 4})
    objective.set_group_counts({'gradient': 1, 'photo': 2, 'plain': 3, 'texture': 4})
    with pytest.raises(ValueError, match=r"group_counts=\{'gradient': 1, 'photo': 2, 'plain': 3, "
                                         r"'texture': 4\} but the training dataset has "
                                         r"\{'gradient': 1, 'photo': 5,"):
        objective.set_group_counts({'gradient': 1, 'photo': 5, 'plain': 3, 'texture': 4},
                                   source='the training dataset')


def test_standardised_signal_in_the_objective(monkeypatch):
    torch.manual_seed(0)
    dro = MODELS.build(dro_cfg(signal='standardised', momentum=0.5))
    dro.train()
    assert torch.equal(dro.state_dict()['group_signal_moments'],
                       torch.zeros(2, 3, dtype=torch.float64))
    # (detection, distillation): the numbers of test_standardise_by_hand.
    fake_group_steps(monkeypatch, {'photo': (1.0, 10.0), 'plain': (3.0, 30.0),
                              'texture': (5.0, 20.0), 'gradient': (0.0, 0.0)})
    out = dro.loss(**group_batch(dro, ['texture', 'photo', 'plain']))
    s0, s1 = math.sqrt(8 / 3), math.sqrt(200 / 3)
    s = {'photo': -2 / s0 - 10 / s1, 'plain': 10 / s1, 'texture': 2 / s0}
    raw = {g: 0.25 * math.exp(0.5 * v) for g, v in s.items()}
    for g, v in s.items():
        assert out[f'gsig_{g}'].item() == pytest.approx(v, rel=1e-5)
        assert out[f'gq_{g}'].item() == pytest.approx(0.75 * raw[g] / sum(raw.values()),
                                                      rel=1e-5)
    torch.testing.assert_close(dro.group_signal_moments, torch.tensor(
        [[1.5, 35 / 6, 0.5], [10.0, 700 / 3, 0.5]], dtype=torch.float64))


def test_one_group_batch_keeps_all_weights(dro, monkeypatch):
    fake_group_steps(monkeypatch, {g: (1.0, 1.0) for g in GROUPS})
    before = dro.group_weights.clone()
    out = dro.loss(**group_batch(dro, ['photo', 'photo']))
    # A lone group keeps its own mass: nothing moves.
    assert torch.equal(dro.group_weights, before)
    assert out['loss_group_dro'].item() == pytest.approx(2.0)
    assert sorted(k for k in out if k.startswith('gl_')) == ['gl_photo']


def test_no_update_in_eval_mode(dro, monkeypatch):
    fake_group_steps(monkeypatch, {g: (float(i), 0.0) for i, g in enumerate(GROUPS)})
    dro.eval()
    dro.loss(**group_batch(dro, GROUPS))
    assert torch.equal(dro.group_weights, torch.full((4,), 0.25))
    dro.train()
    dro.loss(**group_batch(dro, GROUPS))
    assert not torch.equal(dro.group_weights, torch.full((4,), 0.25))


def test_group_losses_are_all_reduced_by_image_count(dro, monkeypatch):
    fake_group_steps(monkeypatch, {'plain': (1.0, 0.0), 'photo': (4.0, 0.0),
                              'texture': (0.0, 0.0), 'gradient': (0.0, 0.0)})
    # Another rank holds 3 photo images with detection loss 2 and 1 gradient
    # image with detection loss 5 (rows: summed detection losses, summed
    # distillation losses, counts; groups sorted).
    other = torch.tensor([[5.0, 6.0, 0.0, 0.0], [0.0] * 4, [1.0, 3.0, 0.0, 0.0]])
    monkeypatch.setattr(groups_module, 'all_reduce', lambda stats: stats.add_(other))
    out = dro.loss(**group_batch(dro, ['plain', 'photo']))
    # photo: (1 * 4 + 3 * 2) / 4 = 2.5; gradient present on the other rank.
    assert out['gl_photo'].item() == pytest.approx(2.5)
    assert out['gl_gradient'].item() == pytest.approx(5.0)
    assert out['gl_plain'].item() == pytest.approx(1.0)
    raw = {g: 0.25 * math.exp(0.5 * l) for g, l in
           (('gradient', 5.0), ('photo', 2.5), ('plain', 1.0))}
    for g, r in raw.items():
        assert out[f'gq_{g}'].item() == pytest.approx(0.75 * r / sum(raw.values()), rel=1e-6)
    assert torch.equal(out['gq_texture'], torch.tensor(0.25))
    # This rank's objective uses its own present groups, plain and photo.
    q_plain, q_photo = out['gq_plain'].item(), out['gq_photo'].item()
    assert out['loss_group_dro'].item() == pytest.approx(
        (q_plain * 1.0 + q_photo * 4.0) / (q_plain + q_photo), rel=1e-6)


def sub_batch(data, rows):
    return SingleView()(data['inputs'][rows], [data['data_samples'][i] for i in rows])


def test_real_losses_per_group_and_gradients_reach_the_student(dro):
    data = group_batch(dro, ['plain', 'photo', 'plain'], seed=1)
    out = dro.loss(**data)
    # gl_g is the step's loss total on that group's images alone (and the
    # rows of the whole batch's backbone and neck pass).
    shared = dro.student_features(SingleView()(data['inputs'], data['data_samples']))
    for g, rows in (('plain', [0, 2]), ('photo', [1])):
        sub = dro.step(sub_batch(data, rows), shared.select(rows))
        assert 'loss_fgd' in sub
        assert out[f'gl_{g}'].item() == pytest.approx(dro.parse_losses(sub)[0].item(), rel=1e-5)
    q = {g: out[f'gq_{g}'].item() for g in ('plain', 'photo')}
    expected = sum(q[g] * out[f'gl_{g}'].item() for g in q) / sum(q.values())
    assert out['loss_group_dro'].item() == pytest.approx(expected, rel=1e-5)
    dro.zero_grad()
    dro.parse_losses(out)[0].backward()
    assert dro.student.backbone.layer2[0].conv1.weight.grad.abs().sum() > 0
    assert all(a.weight.grad.abs().sum() > 0 for a in dro.adapters['loss_fgd'])
    assert all(p.grad is None for p in dro.teacher.parameters())


def test_shared_features_slice_the_whole_batch_pass(dro):
    # In eval mode BatchNorm uses running statistics, so the shared pass
    # sliced per group must give exactly the per-sub-batch group losses.
    data = group_batch(dro, ['plain', 'photo', 'plain', 'texture'], seed=2)
    dro.eval()
    try:
        shared = dro.loss(**data)
        for g, rows in (('plain', [0, 2]), ('photo', [1]), ('texture', [3])):
            separate = dro.parse_losses(dro.step(sub_batch(data, rows)))[0]
            assert shared[f'gl_{g}'].item() == pytest.approx(separate.item(), rel=1e-5)
    finally:
        dro.train()
    assert 'extract_feat' not in dro.student.__dict__  # the student is never patched


def test_shared_features_run_the_backbone_once_with_whole_batch_statistics(dro):
    data = group_batch(dro, ['plain', 'photo', 'plain', 'texture'], seed=3)
    calls = []
    hook = dro.student.backbone.register_forward_hook(
        lambda m, args, out: calls.append(args[0].shape[0]))
    bn = dro.student.backbone.bn1
    before = bn.num_batches_tracked.item()
    try:
        dro.loss(**data)
    finally:
        hook.remove()
    assert calls == [4]  # one pass over the batch of 4, not one per group
    assert bn.num_batches_tracked.item() == before + 1


# -- errors -------------------------------------------------------------------
@pytest.mark.parametrize('kwargs,match', [
    (dict(groups=[]), r'groups is empty'),
    (dict(groups=None), r'groups is required'),
    (dict(groups='plain'), r'groups must be a list of group names'),
    (dict(groups=['a', 'b', 'a']), r"groups has duplicates: \['a'\]"),
    (dict(groups=['a', 3]), r'groups must be non-empty strings, got \[3\]'),
    (dict(groups=['a', 'big_loss']), r"groups \['big_loss'\]: a group name must not "
                                     r'contain "loss"'),
    (dict(step_size=0), r'step_size must be > 0, got 0'),
    (dict(step_size=-0.1), r'step_size must be > 0, got -0.1'),
    (dict(step_size=float('inf')), r'step_size must be finite, got inf'),
    (dict(group_key=''), r"group_key must be a non-empty string, got ''"),
    (dict(signal='total'), r"signal must be one of \('detection', 'distillation', 'sum', "
                           r"'standardised'\), got 'total'"),
    (dict(adjustment=-1), r'adjustment must be >= 0, got -1'),
    (dict(momentum=1.0), r'momentum must be in \[0, 1\), got 1.0'),
    (dict(group_counts=[1, 2]), r'group_counts must be a dict \{group: number of training '
                                r'images\}, got \[1, 2\]'),
    (dict(group_counts=dict(plain=3, photo=1, sepia=2)),
     r"group_counts must give every group of groups=\['gradient', 'photo', 'plain', 'texture'\] "
     r"exactly once: missing \['gradient', 'texture'\], unknown \['sepia'\]"),
    (dict(group_counts=dict(plain=3, photo=0, gradient=2, texture=1)),
     r"group_counts\['photo'\] must be >= 1, got 0"),
    (dict(signal='distillation', distill_losses={}),
     r"signal='distillation' follows the distillation loss, but the distiller has no "
     r'distillation terms'),
])
def test_build_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(dro_cfg(**kwargs))


def test_build_error_step_size_not_a_number():
    with pytest.raises(TypeError, match=r"step_size must be a real number, got '0.1'"):
        MODELS.build(dro_cfg(step_size='0.1'))


def test_sample_without_group(dro):
    data = group_batch(dro, ['plain', 'photo'])
    del data['data_samples'][1].group
    with pytest.raises(KeyError, match=r"image \S+ has no 'group' in its metainfo "
                                       r"\(group_key='group'\); use GroupCocoDataset"):
        dro.loss(**data)


def test_sample_of_unknown_group(dro):
    data = group_batch(dro, ['plain', 'sepia'])
    with pytest.raises(ValueError, match=r"image \S+ has group='sepia', which is not one of "
                                         r"groups=\['gradient', 'photo', 'plain', 'texture'\]"):
        dro.loss(**data)
    assert torch.equal(dro.group_weights, torch.full((4,), 0.25))


# -- state: checkpoints and resume -------------------------------------------
def test_weights_round_trip_through_mmengine_checkpoints(dro, tmp_path):
    from mmengine.runner.checkpoint import load_checkpoint, save_checkpoint
    assert 'group_weights' in dro.state_dict()
    dro.group_weights.copy_(torch.tensor([0.1, 0.2, 0.3, 0.4]))
    path = str(tmp_path / 'dro.pth')
    save_checkpoint({'state_dict': dro.state_dict()}, path)
    fresh = MODELS.build(dro_cfg())
    assert torch.equal(fresh.group_weights, torch.full((4,), 0.25))
    load_checkpoint(fresh, path, map_location='cpu', strict=True)
    assert torch.equal(fresh.group_weights, dro.group_weights)


class _StateAtStart(Hook):
    """Records the objective's state once the runner has resumed."""
    priority = 'VERY_LOW'  # after the runner has resumed and GroupCountsHook

    def before_train(self, runner):
        model = runner.model
        self.weights = model.group_weights.clone()
        self.moments = getattr(model, 'group_signal_moments', torch.zeros(())).clone()
        self.counts = model.objective.counts.values


def group_runner_cfg(digits_root, work_dir, model, max_iters, **extra):
    """runner_cfg on the tiny digits as a GroupCocoDataset, checkpoint every 2."""
    cfg = runner_cfg(digits_root, work_dir, model, max_iters=max_iters, checkpoint_interval=2,
                     experiment_name=f'group_dro_{osp.basename(work_dir)}', **extra)
    dataset = cfg.train_dataloader.dataset
    dataset.type = 'GroupCocoDataset'
    dataset.pipeline[-1] = dict(type='PackDetInputs', meta_keys=(
        'img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'group'))
    return cfg


def train_then_resume(tmp_path, digits_root, model, **extra):
    """Train 2 iterations, then resume from the checkpoint up to 3; returns
    both runners, the state at the end of the first and at the start of the
    second."""
    runner_a = Runner.from_cfg(group_runner_cfg(digits_root, str(tmp_path / 'a'), model, 2,
                                                **extra))
    runner_a.train()
    ckpt = osp.join(str(tmp_path / 'a'), 'iter_2.pth')
    runner_b = Runner.from_cfg(group_runner_cfg(digits_root, str(tmp_path / 'b'), model, 3,
                                                resume=True, load_from=ckpt, **extra))
    start = _StateAtStart()
    runner_b.register_hook(start)
    runner_b.train()
    assert runner_b.iter == 3
    return runner_a, runner_b, load_checkpoint_file(ckpt)['state_dict'], start


def test_resume_restores_the_weights(tmp_path, digits_root, fast_runner):
    runner_a, runner_b, saved, start = train_then_resume(tmp_path, digits_root,
                                                         dro_cfg(step_size=1.0))
    trained = runner_a.model.group_weights.clone()
    assert not torch.equal(trained, torch.full((4,), 0.25))  # the weights moved
    assert torch.equal(saved['group_weights'], trained)
    assert torch.equal(start.weights, trained)
    assert not torch.equal(runner_b.model.group_weights, trained)  # and trained on


def test_resume_restores_the_signal_moments_and_counts_the_groups_again(
        tmp_path, digits_root, fast_runner):
    with open(osp.join(digits_root, 'annotations', 'train.json')) as f:
        counts = Counter(img['group'] for img in json.load(f)['images'])
    model = dro_cfg(step_size=1.0, signal='standardised', adjustment=1.0)
    runner_a, runner_b, saved, start = train_then_resume(
        tmp_path, digits_root, model, custom_hooks=[dict(type='GroupCountsHook')])
    # The hook counted the training images of each group, in both runs.
    expected = tuple(counts[g] for g in SORTED)
    assert runner_a.model.objective.counts.values == expected == start.counts
    moments = runner_a.model.group_signal_moments.clone()
    assert moments.dtype == torch.float64
    assert moments[0, 2].item() == pytest.approx(1 - 0.99 ** 2)  # two steps taken
    assert torch.equal(saved['group_signal_moments'], moments)
    assert torch.equal(start.moments, moments)
    assert torch.equal(start.weights, runner_a.model.group_weights)
    assert not torch.equal(runner_b.model.group_signal_moments, moments)  # and trained on


# -- DDP ----------------------------------------------------------------------
def _ddp_worker(rank, world_size, port, out_dir):
    import os

    import torch.distributed as dist
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    try:
        from mmengine.model import MMDistributedDataParallel
        from mmengine.optim import OptimWrapper

        from mmdet.testing import demo_mm_inputs
        torch.manual_seed(0)
        model = MODELS.build(dro_cfg())
        ddp = MMDistributedDataParallel(module=model, find_unused_parameters=False)
        optim = OptimWrapper(torch.optim.SGD(model.parameters(), lr=0.001))
        # Different groups on the two ranks; rank 1 has a group rank 0 lacks.
        groups = [['plain', 'photo'], ['photo', 'texture', 'texture']][rank]
        logs = []
        for step in range(2):
            data = demo_mm_inputs(batch_size=len(groups), image_shapes=(3, 64, 64),
                                  num_items=[3] * len(groups), num_classes=10)
            gen = torch.Generator().manual_seed(10 * step + rank)  # own images per rank
            data['inputs'] = [torch.randint(0, 256, img.shape, dtype=torch.uint8,
                                            generator=gen) for img in data['inputs']]
            for sample, group in zip(data['data_samples'], groups):
                sample.set_metainfo({'group': group})
            log_vars = ddp.train_step(data, optim)
            logs.append({k: v.item() for k, v in log_vars.items()})
        torch.save(dict(weights=model.group_weights.clone(), logs=logs),
                   os.path.join(out_dir, f'rank{rank}.pth'))
    finally:
        dist.destroy_process_group()


def test_ddp_ranks_share_the_weights(tmp_path):
    import socket

    import torch.multiprocessing as mp
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    mp.spawn(_ddp_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(str(tmp_path / f'rank{r}.pth'), weights_only=True) for r in (0, 1))
    # The group losses were all-reduced: both ranks made the same update.
    assert torch.equal(r0['weights'], r1['weights'])
    assert not torch.equal(r0['weights'], torch.full((4,), 0.25))
    for log0, log1 in zip(r0['logs'], r1['logs']):
        # texture only on rank 1, plain only on rank 0: both log both.
        for g in ('plain', 'photo', 'texture'):
            assert log0[f'gl_{g}'] == pytest.approx(log1[f'gl_{g}'])
        assert 'gl_gradient' not in log0 and 'gl_gradient' not in log1
        assert log0['loss_group_dro'] != log1['loss_group_dro']  # own batches


def test_export_takes_the_student_of_a_group_dro_config():
    from mmengine.config import Config

    from mmkd_plugins.export import standalone_student_config
    cfg = Config.fromfile(osp.join(
        osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs', 'group_dro',
        'group-dro-kd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits-imbalanced.py'))
    with pytest.warns(UserWarning, match='GroupCocoDataset'):
        out = standalone_student_config(cfg)
    assert out.model.type == 'RetinaNet' and out.model.backbone.base_channels == 16
