"""GroupDRODistiller: the weight update, the objective, logging, errors and
the weights' round trip through checkpoints and --resume."""
import math
import os.path as osp

import pytest
import torch
from conftest import distiller_cfg, make_batch, runner_cfg
from mmengine.hooks import Hook
from mmengine.runner import Runner

from mmdet.registry import MODELS
from mmkd_plugins.compat import load_checkpoint_file
from mmkd_plugins.distillers import DetectionDistiller, GroupDRODistiller, SingleView
from mmkd_plugins.distillers import group_dro_distiller as gdro
from mmkd_plugins.distillers.group_dro_distiller import exponentiated_gradient_step

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


def batch_of(model, groups, seed=0):
    data = make_batch(model, batch_size=len(groups), seed=seed)
    for sample, group in zip(data['data_samples'], groups):
        sample.set_metainfo({'group': group})
    return data


def fake_parent(monkeypatch, group_losses, calls=None):
    """Make the distiller's step return known losses: ``group_losses[g]`` =
    (detection, distillation), both times a parameter equal to 1 so that the
    objective has a gradient."""
    weight = torch.nn.Parameter(torch.ones(()))

    def step(self, batch, features=None):
        groups = {s.metainfo['group'] for s in batch.data_samples}
        assert len(groups) == 1, groups  # one call per group
        det, dist = group_losses[groups.pop()]
        if calls is not None:
            calls.append((batch.inputs.shape[0],
                          [s.metainfo['img_id'] for s in batch.data_samples]))
        return {'loss_cls': [torch.tensor(det / 2) * weight, torch.tensor(det / 2) * weight],
                'loss_fgd': torch.tensor(dist) * weight, 'acc': torch.tensor(50.0)}

    monkeypatch.setattr(DetectionDistiller, 'step', step)
    return weight


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


# -- the distiller's loss -----------------------------------------------------
def test_loss_updates_weights_and_weights_the_objective(dro, monkeypatch):
    calls = []
    weight = fake_parent(monkeypatch, {'plain': (1.0, 0.5), 'photo': (2.0, 1.0),
                                       'texture': (0.2, 0.1), 'gradient': (9.0, 9.0)}, calls)
    start = torch.tensor([0.1, 0.2, 0.3, 0.4])  # gradient photo plain texture
    dro.group_weights.copy_(start)
    data = batch_of(dro, ['plain', 'photo', 'plain', 'texture', 'photo'])
    img_ids = [s.metainfo['img_id'] for s in data['data_samples']]
    out = dro.loss(**data)

    # One step per present group, in sorted order, on its images only:
    # the sub-batches partition the batch.
    assert calls == [(2, [img_ids[1], img_ids[4]]), (2, [img_ids[0], img_ids[2]]),
                     (1, [img_ids[3]])]
    # l_g = detection + distillation; present: photo 3.0, plain 1.5, texture 0.3.
    raw = {'photo': 0.2 * math.exp(0.5 * 3.0), 'plain': 0.3 * math.exp(0.5 * 1.5),
           'texture': 0.4 * math.exp(0.5 * 0.3)}
    expected = {g: 0.9 * r / sum(raw.values()) for g, r in raw.items()}
    expected['gradient'] = 0.1
    for g in SORTED:
        assert out[f'gq_{g}'].item() == pytest.approx(expected[g], rel=1e-6)
        assert dro.group_weights[SORTED.index(g)].item() == pytest.approx(expected[g], rel=1e-6)
    assert torch.equal(dro.group_weights[0], start[0])  # absent: exactly its old weight
    # Group losses: logged for the present groups only.
    assert 'gl_gradient' not in out
    for g, l in (('photo', 3.0), ('plain', 1.5), ('texture', 0.3)):
        assert out[f'gl_{g}'].item() == pytest.approx(l)
    # Objective: updated weights, renormalised over the present groups.
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


def test_one_group_batch_keeps_all_weights(dro, monkeypatch):
    fake_parent(monkeypatch, {g: (1.0, 1.0) for g in GROUPS})
    before = dro.group_weights.clone()
    out = dro.loss(**batch_of(dro, ['photo', 'photo']))
    # A lone group keeps its own mass: nothing moves.
    assert torch.equal(dro.group_weights, before)
    assert out['loss_group_dro'].item() == pytest.approx(2.0)
    assert sorted(k for k in out if k.startswith('gl_')) == ['gl_photo']


def test_no_update_in_eval_mode(dro, monkeypatch):
    fake_parent(monkeypatch, {g: (float(i), 0.0) for i, g in enumerate(GROUPS)})
    dro.eval()
    dro.loss(**batch_of(dro, GROUPS))
    assert torch.equal(dro.group_weights, torch.full((4,), 0.25))
    dro.train()
    dro.loss(**batch_of(dro, GROUPS))
    assert not torch.equal(dro.group_weights, torch.full((4,), 0.25))


def test_group_losses_are_all_reduced_by_image_count(dro, monkeypatch):
    fake_parent(monkeypatch, {'plain': (1.0, 0.0), 'photo': (4.0, 0.0),
                              'texture': (0.0, 0.0), 'gradient': (0.0, 0.0)})
    # Another rank holds 3 photo images with loss 2 and 1 gradient image
    # with loss 5 (rows: summed losses, counts; groups sorted).
    other = torch.tensor([[5.0, 6.0, 0.0, 0.0], [1.0, 3.0, 0.0, 0.0]])
    monkeypatch.setattr(gdro, 'all_reduce', lambda stats: stats.add_(other))
    out = dro.loss(**batch_of(dro, ['plain', 'photo']))
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
    data = batch_of(dro, ['plain', 'photo', 'plain'], seed=1)
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
    data = batch_of(dro, ['plain', 'photo', 'plain', 'texture'], seed=2)
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
    data = batch_of(dro, ['plain', 'photo', 'plain', 'texture'], seed=3)
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
])
def test_build_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MODELS.build(dro_cfg(**kwargs))


def test_build_error_step_size_not_a_number():
    with pytest.raises(TypeError, match=r"step_size must be a real number, got '0.1'"):
        MODELS.build(dro_cfg(step_size='0.1'))


def test_sample_without_group(dro):
    data = batch_of(dro, ['plain', 'photo'])
    del data['data_samples'][1].group
    with pytest.raises(KeyError, match=r"image \S+ has no 'group' in its metainfo "
                                       r"\(group_key='group'\); use GroupCocoDataset"):
        dro.loss(**data)


def test_sample_of_unknown_group(dro):
    data = batch_of(dro, ['plain', 'sepia'])
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


class _WeightsAtStart(Hook):
    priority = 'VERY_LOW'  # after the runner has resumed

    def before_train(self, runner):
        self.weights = runner.model.group_weights.clone()


def test_resume_restores_the_weights(tmp_path, digits_root, fast_runner):
    def cfg(name, max_iters, **extra):
        cfg = runner_cfg(digits_root, str(tmp_path / name), dro_cfg(step_size=1.0),
                         max_iters=max_iters, checkpoint_interval=2,
                         experiment_name=f'group_dro_resume_{name}', **extra)
        dataset = cfg.train_dataloader.dataset
        dataset.type = 'GroupCocoDataset'
        dataset.pipeline[-1] = dict(type='PackDetInputs', meta_keys=(
            'img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'group'))
        return cfg

    runner_a = Runner.from_cfg(cfg('a', 2))
    runner_a.train()
    trained = runner_a.model.group_weights.clone()
    assert not torch.equal(trained, torch.full((4,), 0.25))  # the weights moved
    saved = load_checkpoint_file(osp.join(str(tmp_path / 'a'), 'iter_2.pth'))
    assert torch.equal(saved['state_dict']['group_weights'], trained)

    runner_b = Runner.from_cfg(cfg('b', 3, resume=True,
                                   load_from=osp.join(str(tmp_path / 'a'), 'iter_2.pth')))
    hook = _WeightsAtStart()
    runner_b.register_hook(hook)
    runner_b.train()
    assert runner_b.iter == 3
    assert torch.equal(hook.weights, trained)
    assert not torch.equal(runner_b.model.group_weights, trained)  # and trained on


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
