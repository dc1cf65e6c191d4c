"""MC dropout on the teacher: the distiller's ``mc_dropout`` spec and the
pure pieces in mmkd_plugins/distillers/mc_dropout.py."""
import copy
import itertools

import pytest
import torch
from conftest import distiller_cfg, fgd_spec, make_batch, tiny_faster_rcnn, tiny_retinanet
from mmengine.logging import MessageHub

from mmdet.registry import MODELS
from mmkd_plugins.distillers.mc_dropout import (ShiftedMoments, backbone_last_stage, dropout,
                                                mc_variance, parse_mc_dropout, pass_seeds,
                                                pool, repeat_passes, split_passes)

PASSES = 4
_hubs = itertools.count()


def uet_spec(host=None, loss=None, **mc):
    return dict(student='neck', teacher='neck', mc_dropout=dict(dict(passes=PASSES), **mc),
                loss=loss or dict(type='UncertaintyAwareLoss',
                                  host=host or dict(type='FGDLoss', alpha_fg=1., beta_bg=1.)))


def build(seed=0, **spec_kwargs):
    torch.manual_seed(seed)
    losses = {'loss_uet': uet_spec(**spec_kwargs)}
    return MODELS.build(distiller_cfg(losses=losses))


def at_iteration(it):
    """A fresh current MessageHub whose ``'iter'`` is ``it``, as mmengine's
    RuntimeInfoHook leaves it during a training iteration."""
    hub = MessageHub.get_instance(f'test_mc_dropout_{next(_hubs)}')
    hub.update_info('iter', it)
    return hub


# ------------------------------------------------------------ pure pieces
def test_repeat_and_split_are_inverse_and_pass_major():
    x = torch.arange(2 * 3 * 2 * 2.).reshape(2, 3, 2, 2)
    rep = repeat_passes(x, 4)
    assert rep.shape == (8, 3, 2, 2) and torch.equal(rep[5], x[1])  # row t*N + n
    split = split_passes(rep, 4)
    assert split.shape == (4, 2, 3, 2, 2)
    assert all(torch.equal(split[t], x) for t in range(4))
    assert pool(x, 0.5).shape == (2, 3, 1, 1) and pool(x, 1.0) is x
    assert pool(torch.zeros(1, 1, 5, 7), 0.5).shape == (1, 1, 3, 4)  # ceil


def test_parse_fills_defaults():
    assert parse_mc_dropout({}, 'k') == dict(p=0.1, passes=8, placement='stage',
                                             reduce='spatial', scale=1.0, chunk=2)


def test_pass_seeds_are_keyed_and_chunk_free():
    seeds = pass_seeds(0, 5, 0, 8)
    assert seeds == pass_seeds(0, 5, 0, 8) and len(set(seeds)) == 8
    assert pass_seeds(0, 5, 0, 3) == seeds[:3]  # pass t's seed does not depend on T
    others = [pass_seeds(1, 5, 0, 8), pass_seeds(0, 6, 0, 8), pass_seeds(0, 5, 1, 8),
              pass_seeds(0, -1, 0, 8)]
    assert all(not set(o) & set(seeds) for o in others)
    assert all(0 <= s < 2**63 for s in seeds)


def test_dropout_draws_from_its_generator_only():
    x = torch.ones(200, 100)
    state = torch.get_rng_state()
    a = dropout(x, 0.25, torch.Generator().manual_seed(3))
    b = dropout(x, 0.25, torch.Generator().manual_seed(3))
    c = dropout(x, 0.25, torch.Generator().manual_seed(4))
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is untouched
    assert torch.equal(a, b) and not torch.equal(a, c)
    # Inverted dropout: zeros or 1 / (1 - p), a quarter dropped, mean kept.
    values = a.unique().tolist()
    assert len(values) == 2 and values[0] == 0 and values[1] == pytest.approx(4 / 3)
    assert (a == 0).float().mean().item() == pytest.approx(0.25, abs=0.01)
    assert a.mean().item() == pytest.approx(1.0, abs=0.02)
    assert dropout(x, 0.0, torch.Generator()) is x


def test_shifted_moments_are_the_unbiased_variance_in_any_chunks():
    g = torch.Generator().manual_seed(0)
    samples = [torch.randn(7, 2, 3, 4, 5, generator=g) * 3 + 100, torch.randn(7, 2, 1, 2, 2)]
    expected = [s.var(dim=0, unbiased=True) for s in samples]
    for sizes in ((7, ), (1, ) * 7, (2, 2, 3)):
        moments, start = ShiftedMoments(), 0
        for size in sizes:
            moments.add([s[start:start + size] for s in samples])
            start += size
        for got, want in zip(moments.variance(), expected):
            torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    # Passes that agree give exactly 0, for large values and in fp16 too.
    same = (torch.randn(2, 3, 4, 5, generator=g) * 1e4).half().expand(5, -1, -1, -1, -1)
    moments = ShiftedMoments()
    moments.add([same])
    var = moments.variance()[0]
    assert var.dtype == torch.float32 and torch.equal(var, torch.zeros(2, 3, 4, 5))
    one = ShiftedMoments()
    one.add([same[:1]])
    with pytest.raises(ValueError, match='needs two passes'):
        one.variance()


def test_backbone_last_stage():
    model = build()
    stage, i_in, i_out = backbone_last_stage(model.teacher.backbone)
    assert stage is model.teacher.backbone.layer4 and (i_in, i_out) == (1, 2)  # (1, 2, 3)
    assert backbone_last_stage(model.teacher.neck) is None


# -------------------------------------------------------- build-time errors
K = 'distill_losses.loss_uet'


@pytest.mark.parametrize('mc,match', [
    (dict(p=1.0), rf'{K}.mc_dropout.p must be a dropout rate in \[0, 1\), got 1.0'),
    (dict(p=-0.1), rf'{K}.mc_dropout.p must be a dropout rate'),
    (dict(p='0.1'), rf'{K}.mc_dropout.p must be a dropout rate'),
    (dict(passes=1), rf'{K}.mc_dropout.passes must be an int >= 2'),
    (dict(passes=4.0), rf'{K}.mc_dropout.passes must be an int >= 2'),
    (dict(chunk=0), rf'{K}.mc_dropout.chunk must be an int >= 1'),
    (dict(chunk=True), rf'{K}.mc_dropout.chunk must be an int >= 1'),
    (dict(placement='roi'), rf'{K}.mc_dropout.placement must be one of'),
    (dict(placement='backbone'), rf"{K}.mc_dropout.placement='backbone' was removed: "
     "MMDetection's FPN is linear"),
    (dict(placement='neck'), rf"{K}.mc_dropout.placement='neck' was removed"),
    (dict(reduce='pixel'), rf'{K}.mc_dropout.reduce must be one of'),
    (dict(placement='head', reduce='channel'), rf"{K}.mc_dropout.reduce='channel' with "
     "placement='head'"),
    (dict(scale=0), rf'{K}.mc_dropout.scale must be in \(0, 1\]'),
    (dict(passes=PASSES, T=8), rf"{K}.mc_dropout: unknown key\(s\) \['T'\]"),
])
def test_error_bad_mc_dropout_values(mc, match):
    spec = uet_spec()
    spec['mc_dropout'] = mc
    with pytest.raises(ValueError, match=match):
        MODELS.build(distiller_cfg(losses={'loss_uet': spec}))


def test_error_mc_dropout_not_a_dict():
    spec = uet_spec()
    spec['mc_dropout'] = 0.1
    with pytest.raises(TypeError, match=f'{K}.mc_dropout must be a dict'):
        MODELS.build(distiller_cfg(losses={'loss_uet': spec}))


def test_error_mc_dropout_with_a_loss_that_takes_no_variance():
    with pytest.raises(ValueError, match=f'{K}.mc_dropout: FGDLoss does not take the MC'):
        build(loss=dict(type='FGDLoss'))


def test_error_uet_loss_without_mc_dropout():
    spec = uet_spec()
    del spec['mc_dropout']
    with pytest.raises(ValueError, match=f'{K}.loss.type: UncertaintyAwareLoss needs the '
                       f"teacher's MC dropout variance; add {K}.mc_dropout"):
        MODELS.build(distiller_cfg(losses={'loss_uet': spec}))


def test_error_loss_argument_contradicts_mc_dropout():
    loss = dict(type='UncertaintyAwareLoss', host=dict(type='PKDLoss'), reduce='channel')
    with pytest.raises(ValueError, match=f"{K}.loss.reduce='channel' contradicts "
                       f"{K}.mc_dropout.reduce='spatial'"):
        build(loss=loss)


def test_error_mc_dropout_on_a_module_other_than_the_neck():
    spec = uet_spec()
    spec.update(student='backbone', teacher='backbone')
    with pytest.raises(ValueError, match=f"{K}.teacher='backbone': with mc_dropout"):
        MODELS.build(distiller_cfg(losses={'loss_uet': spec}))


def test_error_stage_placement_without_the_last_stages_in_the_outputs():
    teacher = tiny_retinanet(width=16, fpn=32)
    teacher['backbone']['out_indices'] = (0, 1, 3)  # C4, layer4's input, is not returned
    teacher['neck']['in_channels'] = [16, 32, 128]
    with pytest.raises(ValueError, match=rf"{K}.mc_dropout.placement='stage' needs a "
                       r'ResNet-style backbone .* the teacher has a ResNet with '
                       r"out_indices=\(0, 1, 3\). Use placement='head'"):
        MODELS.build(distiller_cfg(teacher=teacher, losses={'loss_uet': uet_spec()}))


def test_loss_arguments_filled_from_mc_dropout():
    model = build(reduce='both', placement='stage', scale=0.5)
    loss = model.distill_losses['loss_uet']
    assert (loss.reduce, loss.placement, loss.scale) == ('both', 'stage', 0.5)
    assert loss.host.in_channels == 32 and loss.host.num_levels == 3


# -------------------------------------------------------- what is measured
def explicit_variance(model, feats, p, seeds):
    """Stage placement written out pass by pass, without chunks or moments."""
    teacher = model.teacher
    stage, i_in, i_out = backbone_last_stage(teacher.backbone)
    outs = []
    with torch.no_grad():
        for seed in seeds:
            inputs = list(feats)
            inputs[i_out] = stage(dropout(feats[i_in], p, torch.Generator().manual_seed(seed)))
            outs.append(teacher.neck(inputs))
    return [torch.stack(level).var(dim=0) for level in zip(*outs)]


def test_streamed_variance_is_the_variance_of_the_passes_in_any_chunks():
    model = build()
    x = make_batch(model)['inputs']
    with torch.no_grad():
        feats = model.teacher.backbone(x)
    seeds = pass_seeds(0, 0, 0, 6)
    expected = explicit_variance(model, feats, 0.2, seeds)
    assert all(e.mean() > 0 for e in expected)
    for chunk in (1, 4, 6, 10):
        got = mc_variance(model.teacher, feats, 0.2, seeds, 'stage', chunk=chunk)
        for g, e in zip(got, expected):
            torch.testing.assert_close(g, e, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize('placement', ['stage', 'head'])
def test_uncertainty_is_zero_at_p0_and_grows_with_p(placement):
    model = build(placement=placement)
    batches = [make_batch(model, seed=seed)['inputs'] for seed in range(2)]
    with torch.no_grad():
        feats = [model.teacher.backbone(x) for x in batches]
        if placement == 'head':
            feats = [model.teacher.neck(f) for f in feats]
    means = []
    for p in (0.0, 0.05, 0.2, 0.5):
        var = [v.mean() for f in feats
               for v in mc_variance(model.teacher, f, p, pass_seeds(0, 0, 0, 8), placement)]
        means.append(float(torch.stack(var).mean()))
    assert means[0] == 0.0
    assert means[1] < means[2] < means[3], means


def linearised_variance(fn, x, p):
    """What dropout on ``x`` would give if ``fn`` were linear: ``p / (1 - p)
    * sum_i (J_ji x_i)^2`` with J the Jacobian of ``fn`` at ``x`` (for a
    linear ``fn`` the exact variance). ``fn`` maps a flat (D, ) input to a
    list of levels; returns the flat variance per level."""
    sizes = [o.numel() for o in fn(x)]
    jac = torch.autograd.functional.jacobian(
        lambda z: torch.cat([o.flatten() for o in fn(z)]), x, vectorize=True)
    return torch.split(p / (1 - p) * jac.pow(2) @ x.pow(2), sizes)


def unflatten(flat, like):
    parts = torch.split(flat, [t.numel() for t in like])
    return [q.reshape(t.shape) for q, t in zip(parts, like)]


def test_samples_through_non_linear_computation_are_not_the_linear_closed_form():
    """Dropout on the FPN's inputs (the removed 'backbone' placement): the MC
    variance at T=256 is the closed form of the linear FPN, within 5 % per
    level: sampling it measured nothing. Through the last backbone stage
    ('stage') or the dense head ('head'), it is 15-20 % off the linearised
    form, far beyond the MC error that the first case shows."""
    model = build()
    teacher, p, seeds = model.teacher, 0.3, pass_seeds(0, 0, 0, 256)
    x = make_batch(model, batch_size=1)['inputs']
    with torch.no_grad():
        feats = teacher.backbone(x)
        neck = teacher.neck(feats)
    stage, i_in, i_out = backbone_last_stage(teacher.backbone)

    def off(mc, closed):  # relative difference of each level's total
        return [abs(float(m.sum() / c.sum()) - 1) for m, c in zip(mc, closed)]

    # The linear FPN, all its inputs dropped: MC passes written out.
    closed = linearised_variance(lambda z: teacher.neck(unflatten(z, feats)),
                                 torch.cat([f.flatten() for f in feats]), p)
    with torch.no_grad():
        passes = [teacher.neck([dropout(f, p, g) for f in feats])
                  for g in (torch.Generator().manual_seed(s) for s in seeds)]
    mc = [torch.stack(level).var(dim=0) for level in zip(*passes)]
    assert max(off(mc, closed)) < 0.05, off(mc, closed)

    def through_stage(z):
        inputs = list(feats)
        inputs[i_out] = stage(z.reshape(feats[i_in].shape))
        return teacher.neck(inputs)

    closed = linearised_variance(through_stage, feats[i_in].flatten(), p)
    mc = mc_variance(teacher, feats, p, seeds, 'stage', chunk=64)
    assert min(off(mc, closed)) > 0.1, off(mc, closed)

    def through_head(z):
        return [s.sigmoid() for s in teacher.bbox_head(unflatten(z, neck))[0]]

    closed = linearised_variance(through_head, torch.cat([f.flatten() for f in neck]), p)
    mc = mc_variance(teacher, neck, p, seeds, 'head', chunk=64)
    assert min(off(mc, closed)) > 0.1, off(mc, closed)


def test_chunked_calls_and_one_backbone_pass_per_step():
    model = build(chunk=3)  # T=4: chunks of 3 and 1 passes
    model.train()
    data = make_batch(model)
    calls = {'backbone': [], 'backbone.layer4': [], 'neck': []}
    for name in calls:
        model.teacher.get_submodule(name).register_forward_hook(
            lambda m, args, out, name=name: calls[name].append(
                args[0][0].shape[0] if name == 'neck' else args[0].shape[0]))
    losses = model(**data, mode='loss')
    assert torch.isfinite(losses['loss_uet'])
    # One deterministic pass (2 images), then the last stage and the neck on
    # 3 x 2 and 1 x 2 dropped copies; the backbone's other stages run once.
    assert calls == {'backbone': [2], 'backbone.layer4': [2, 6, 2], 'neck': [2, 6, 2]}
    # With distillation off, the teacher does not run at all.
    calls = {name: [] for name in calls}
    model.distill_enabled = False
    model(**data, mode='loss')
    assert calls == {'backbone': [], 'backbone.layer4': [], 'neck': []}


def test_masks_are_keyed_by_the_training_iteration_not_the_global_rng():
    model = build(p=0.3)
    term = model.terms[0]
    data = make_batch(model)
    with torch.no_grad():
        records = {'backbone': model.teacher.backbone(data['inputs'])}

    def var(training=True, seed=0):
        torch.manual_seed(seed)  # sets the base seed; draws nothing
        state = torch.get_rng_state()
        out = term.teacher_var(records, training)
        assert torch.equal(torch.get_rng_state(), state)
        return out

    at_iteration(7)
    first, second = var(), var()  # two calls in one iteration (group DRO)
    at_iteration(8)
    later = var()
    at_iteration(7)
    again, again_second = var(), var()  # e.g. the same iteration after --resume
    at_iteration(8)
    var()
    at_iteration(7)
    other_seed = var(seed=1)  # first call of iteration 7, another run's seed
    same = [torch.equal(a, b) for a, b in zip(first, again)]
    assert all(same) and all(torch.equal(a, b) for a, b in zip(second, again_second))
    for other in (second, later, other_seed):
        assert not any(torch.equal(a, b) for a, b in zip(first, other))


def test_no_gradient_reaches_the_teacher_and_bn_stays_in_eval():
    model = build(p=0.3)
    model.train()
    before = copy.deepcopy(model.teacher.state_dict())
    modes = []
    model.teacher.neck.register_forward_hook(lambda m, a, o: modes.append(
        (m.training, model.teacher.backbone.layer4[0].bn1.training, torch.is_grad_enabled())))
    optim = torch.optim.SGD(model.parameters(), lr=0.1)
    for seed in range(2):
        losses = model(**make_batch(model, seed=seed), mode='loss')
        total, _ = model.parse_losses(losses)
        optim.zero_grad()
        total.backward()
        optim.step()
    assert modes == [(False, False, False)] * 6  # per step: 1 plain + 2 chunks
    assert all(p.grad is None for p in model.teacher.parameters())
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert model.student.neck.fpn_convs[0].conv.weight.grad.abs().sum() > 0
    var = model.teacher_var(make_batch(model)['inputs'], 'loss_uet')
    assert not any(v.requires_grad for v in var)


def test_head_placement_measures_the_dense_head():
    model = build(placement='head')
    data = make_batch(model)
    var = model.teacher_var(data['inputs'], 'loss_uet')
    # One anchor x 10 classes, at the neck levels' sizes; variances of
    # probabilities are at most 1/4.
    assert [v.shape for v in var] == [(2, 10, 8 // 2**i, 8 // 2**i) for i in range(3)]
    assert all(((v >= 0) & (v <= 0.25)).all() for v in var)
    assert torch.isfinite(model(**data, mode='loss')['loss_uet'])


def _two_stage_teacher_var(spec):
    """A Faster R-CNN pair distilled at FPN levels 0-3 with ``spec``: the
    model, a batch and the teacher's MC variance per level."""
    spec['levels'] = [0, 1, 2, 3]
    torch.manual_seed(0)
    model = MODELS.build(distiller_cfg(student=tiny_faster_rcnn(width=8, fpn=16),
                                       teacher=tiny_faster_rcnn(width=16, fpn=32),
                                       losses={'loss_uet': spec}))
    data = make_batch(model)
    return model, data, model.teacher_var(data['inputs'], 'loss_uet')


def test_head_placement_on_a_two_stage_teacher_uses_the_rpn_head():
    model, data, var = _two_stage_teacher_var(uet_spec(placement='head'))
    # RPN: 3 anchors, one sigmoid score each; strides 4..32 of the 5 levels.
    assert [v.shape for v in var] == [(2, 3, 16 // 2**i, 16 // 2**i) for i in range(4)]
    model.train()
    assert torch.isfinite(model(**data, mode='loss')['loss_uet'])


def test_stage_placement_on_a_two_stage_teacher():
    _, _, var = _two_stage_teacher_var(uet_spec())
    assert [v.shape for v in var] == [(2, 32, 16 // 2**i, 16 // 2**i) for i in range(4)]
    assert all(v.mean() > 0 for v in var)


@pytest.mark.parametrize('placement', ['stage', 'head'])
def test_lower_resolution_passes(placement):
    model = build(placement=placement, scale=0.5)
    data = make_batch(model)
    var = model.teacher_var(data['inputs'], 'loss_uet')
    assert [tuple(v.shape[-2:]) for v in var] == [(4, 4), (2, 2), (1, 1)]
    model.train()
    assert torch.isfinite(model(**data, mode='loss')['loss_uet'])


def test_other_losses_are_untouched_beside_an_mc_spec():
    torch.manual_seed(0)
    model = MODELS.build(distiller_cfg(losses={'loss_uet': uet_spec(), 'loss_fgd': fgd_spec()}))
    model.train()
    losses = model(**make_batch(model), mode='loss')
    assert torch.isfinite(losses['loss_uet']) and torch.isfinite(losses['loss_fgd'])


# ------------------------------------------------------------------ resume
def test_a_resumed_uet_run_equals_a_straight_one(tmp_path, digits_root):
    """Through tools/train.py: 4 iterations straight, and 2 then --resume to
    4, give the same weights bit for bit (the masks follow the iteration,
    not the global RNG, which --resume does not restore)."""
    import os
    import os.path as osp
    import subprocess
    import sys

    from conftest import runner_cfg
    from mmkd_plugins.compat import load_checkpoint_file
    repo = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    model = distiller_cfg(losses={'loss_uet': uet_spec(
        p=0.3, reduce='both', loss=dict(type='UncertaintyAwareLoss', mode='add', strength=2.0,
                                        host=dict(type='FGDLoss')))})
    config = str(tmp_path / 'uet_tiny.py')
    runner_cfg(digits_root, str(tmp_path / 'unused'), model, max_iters=4, checkpoint_interval=2,
               custom_imports=dict(imports=['mmkd_plugins'], allow_failed_imports=False)
               ).dump(config)

    def train(work_dir, *args):
        out = subprocess.run(
            [sys.executable, osp.join(repo, 'tools', 'train.py'), config, '--work-dir',
             str(tmp_path / work_dir), *args], cwd=str(tmp_path), capture_output=True,
            text=True, env=dict(os.environ, OMP_NUM_THREADS='1'))
        assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]

    train('straight')
    train('resumed', '--cfg-options', 'train_cfg.max_iters=2')
    train('resumed', '--resume')
    straight = load_checkpoint_file(str(tmp_path / 'straight' / 'iter_4.pth'))['state_dict']
    resumed = load_checkpoint_file(str(tmp_path / 'resumed' / 'iter_4.pth'))['state_dict']
    at_2 = load_checkpoint_file(str(tmp_path / 'resumed' / 'iter_2.pth'))['state_dict']
    assert straight.keys() == resumed.keys()
    assert all(torch.isfinite(value).all() for value in straight.values())
    for key, value in straight.items():
        assert torch.equal(resumed[key], value), key
    # Iterations 3-4 did train after the checkpoint, with the UET loss on.
    assert any(not torch.equal(value, at_2[key]) for key, value in straight.items())
