"""MC dropout on the teacher: the distiller's ``mc_dropout`` spec and the
pure pieces in mmkd_plugins/distillers/mc_dropout.py."""
import copy

import pytest
import torch
import torch.nn.functional as F
from conftest import distiller_cfg, fgd_spec, make_batch, tiny_faster_rcnn, tiny_retinanet

from mmdet.registry import MODELS
from mmkd_plugins.distillers.mc_dropout import (mc_teacher_samples, parse_mc_dropout, pool,
                                                repeat_passes, split_passes)
from mmkd_plugins.losses import mc_uncertainty

PASSES = 4


def uet_spec(host=None, loss=None, **mc):
    return dict(student='neck', teacher='neck', mc_dropout=dict(dict(passes=PASSES), **mc),
                loss=loss or dict(type='UncertaintyAwareLoss',
                                  host=host or dict(type='FGDLoss', alpha_fg=1., beta_bg=1.)))


def build(seed=0, **spec_kwargs):
    torch.manual_seed(seed)
    losses = {'loss_uet': uet_spec(**spec_kwargs)}
    return MODELS.build(distiller_cfg(losses=losses))


def spearman(a, b):
    def ranks(x):
        return torch.argsort(torch.argsort(x.flatten())).double()
    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    return float((ra * rb).sum() / (ra.norm() * rb.norm()))


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
    assert parse_mc_dropout({}, 'k') == dict(p=0.1, passes=8, placement='backbone',
                                             reduce='spatial', scale=1.0)


# -------------------------------------------------------- build-time errors
K = 'distill_losses.loss_uet'


@pytest.mark.parametrize('mc,match', [
    (dict(p=1.0), rf'{K}.mc_dropout.p must be a dropout rate in \[0, 1\), got 1.0'),
    (dict(p=-0.1), rf'{K}.mc_dropout.p must be a dropout rate'),
    (dict(p='0.1'), rf'{K}.mc_dropout.p must be a dropout rate'),
    (dict(passes=1), rf'{K}.mc_dropout.passes must be an int >= 2'),
    (dict(passes=4.0), rf'{K}.mc_dropout.passes must be an int >= 2'),
    (dict(placement='roi'), rf'{K}.mc_dropout.placement must be one of'),
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


def test_error_mc_dropout_with_a_loss_that_takes_no_samples():
    with pytest.raises(ValueError, match=f'{K}.mc_dropout: FGDLoss does not take teacher'):
        build(loss=dict(type='FGDLoss'))


def test_error_uet_loss_without_mc_dropout():
    spec = uet_spec()
    del spec['mc_dropout']
    with pytest.raises(ValueError, match=f'{K}.loss.type: UncertaintyAwareLoss needs the '
                       f"teacher's MC dropout samples; add {K}.mc_dropout"):
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


def test_error_neck_placement_without_lateral_convs():
    teacher = tiny_retinanet(width=16, fpn=32)
    teacher['neck'] = dict(type='ChannelMapper', in_channels=[32, 64, 128], out_channels=32)
    with pytest.raises(ValueError, match=f"{K}.mc_dropout.placement='neck' needs an FPN-like "
                       'neck with lateral_convs; the teacher has a ChannelMapper'):
        MODELS.build(distiller_cfg(teacher=teacher,
                                   losses={'loss_uet': uet_spec(placement='neck')}))


def test_loss_arguments_filled_from_mc_dropout():
    model = build(reduce='both', placement='neck', scale=0.5)
    loss = model.distill_losses['loss_uet']
    assert (loss.reduce, loss.placement, loss.scale) == ('both', 'neck', 0.5)
    assert loss.host.in_channels == 32 and loss.host.num_levels == 3


# -------------------------------------------------------- what is sampled
def uncertainty(model, data, level=None):
    samples = model.teacher_samples(data['inputs'], 'loss_uet')
    levels = samples if level is None else samples[level:level + 1]
    return torch.stack([mc_uncertainty(s).mean() for s in levels]).mean()


def test_uncertainty_is_zero_at_p0_and_grows_with_p():
    model = build()
    batches = [make_batch(model, seed=seed)['inputs'] for seed in range(3)]
    with torch.no_grad():
        feats = [model.teacher.backbone(x) for x in batches]
    means = []
    for p in (0.0, 0.05, 0.2, 0.5):
        torch.manual_seed(0)
        u = [mc_uncertainty(s).mean() for f in feats
             for s in mc_teacher_samples(model.teacher, f, p, PASSES, 'backbone')]
        means.append(float(torch.stack(u).mean()))
    assert means[0] == 0.0
    assert means[1] < means[2] < means[3], means


def test_p0_samples_are_the_teacher_features():
    model = build(p=0.0)
    data = make_batch(model)
    samples = model.teacher_samples(data['inputs'], 'loss_uet')
    with torch.no_grad():
        teacher = model.teacher.neck(model.teacher.backbone(data['inputs']))
    for s, t in zip(samples, teacher):
        assert s.shape == (PASSES, *t.shape)
        torch.testing.assert_close(s, t.expand_as(s), rtol=1e-5, atol=1e-5)
        assert torch.equal(mc_uncertainty(s, 'both'), torch.zeros_like(t))


def test_uncertainty_is_not_a_function_of_feature_magnitude():
    # Dropout on the distilled map itself gives U = sqrt(p/(1-p)) * RMS_C(F)
    # up to sampling noise: rank correlation ~1 with the magnitude (0.96-0.99
    # over seeds at T=64). Through the neck it is well below (0.67-0.83).
    torch.manual_seed(0)
    model = MODELS.build(distiller_cfg(losses={'loss_uet': uet_spec(p=0.2, passes=64)}))
    data = make_batch(model, batch_size=2, size=(128, 128))
    samples = model.teacher_samples(data['inputs'], 'loss_uet')
    with torch.no_grad():
        feat = model.teacher.neck(model.teacher.backbone(data['inputs']))[0]
    rms = feat.pow(2).mean(dim=1, keepdim=True).sqrt()  # 2 x 16 x 16 locations
    rho = spearman(rms, mc_uncertainty(samples[0]))
    naive = split_passes(F.dropout(repeat_passes(feat, 64), 0.2, training=True), 64)
    rho_naive = spearman(rms, mc_uncertainty(naive))
    assert rho < 0.88 < 0.95 < rho_naive, (rho, rho_naive)


def test_one_batched_mc_call_and_one_backbone_pass_per_step():
    model = build()
    model.train()
    data = make_batch(model)
    calls = {'backbone': [], 'neck': []}
    for name in calls:
        getattr(model.teacher, name).register_forward_hook(
            lambda m, args, out, name=name: calls[name].append(args[0][0].shape[0]
                                                               if name == 'neck'
                                                               else args[0].shape[0]))
    losses = model(**data, mode='loss')
    assert torch.isfinite(losses['loss_uet'])
    assert calls == {'backbone': [2], 'neck': [2, PASSES * 2]}
    # With distillation off, the teacher does not run at all.
    calls = {'backbone': [], 'neck': []}
    model.distill_enabled = False
    model(**data, mode='loss')
    assert calls == {'backbone': [], 'neck': []}


def test_no_gradient_reaches_the_teacher_and_bn_stays_in_eval():
    model = build(p=0.3)
    model.train()
    before = copy.deepcopy(model.teacher.state_dict())
    modes = []
    model.teacher.neck.register_forward_hook(lambda m, a, o: modes.append(
        (m.training, model.teacher.backbone.bn1.training, torch.is_grad_enabled())))
    optim = torch.optim.SGD(model.parameters(), lr=0.1)
    for seed in range(2):
        losses = model(**make_batch(model, seed=seed), mode='loss')
        total, _ = model.parse_losses(losses)
        optim.zero_grad()
        total.backward()
        optim.step()
    assert modes == [(False, False, False)] * 4
    assert all(p.grad is None for p in model.teacher.parameters())
    for key, value in model.teacher.state_dict().items():
        assert torch.equal(value, before[key]), key
    assert model.student.neck.fpn_convs[0].conv.weight.grad.abs().sum() > 0
    samples = model.teacher_samples(make_batch(model)['inputs'], 'loss_uet')
    assert not any(s.requires_grad for s in samples)


def test_neck_placement_drops_lateral_outputs_during_the_call_only():
    model = build(placement='neck', p=0.3)
    laterals = model.teacher.neck.lateral_convs
    hooks = [len(m._forward_hooks) for m in laterals]
    data = make_batch(model)
    samples = model.teacher_samples(data['inputs'], 'loss_uet')
    assert [len(m._forward_hooks) for m in laterals] == hooks
    assert all(mc_uncertainty(s).mean() > 0 for s in samples)
    # A plain teacher pass afterwards is deterministic again.
    with torch.no_grad():
        a = model.teacher.neck(model.teacher.backbone(data['inputs']))
        b = model.teacher.neck(model.teacher.backbone(data['inputs']))
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_head_placement_samples_the_dense_head():
    model = build(placement='head')
    data = make_batch(model)
    samples = model.teacher_samples(data['inputs'], 'loss_uet')
    # One anchor x 10 classes, at the neck levels' sizes; probabilities.
    assert [s.shape for s in samples] == [(PASSES, 2, 10, 8 // 2**i, 8 // 2**i)
                                          for i in range(3)]
    assert all(((s >= 0) & (s <= 1)).all() for s in samples)
    assert torch.isfinite(model(**data, mode='loss')['loss_uet'])


def test_head_placement_on_a_two_stage_teacher_uses_the_rpn_head():
    spec = uet_spec(placement='head')
    spec['levels'] = [0, 1, 2, 3]
    torch.manual_seed(0)
    model = MODELS.build(distiller_cfg(student=tiny_faster_rcnn(width=8, fpn=16),
                                       teacher=tiny_faster_rcnn(width=16, fpn=32),
                                       losses={'loss_uet': spec}))
    data = make_batch(model)
    samples = model.teacher_samples(data['inputs'], 'loss_uet')
    # RPN: 3 anchors, one sigmoid score each; strides 4..32 of the 5 levels.
    assert [s.shape for s in samples] == [(PASSES, 2, 3, 16 // 2**i, 16 // 2**i)
                                          for i in range(4)]
    model.train()
    assert torch.isfinite(model(**data, mode='loss')['loss_uet'])


@pytest.mark.parametrize('placement', ['backbone', 'neck', 'head'])
def test_lower_resolution_passes(placement):
    model = build(placement=placement, scale=0.5)
    data = make_batch(model)
    samples = model.teacher_samples(data['inputs'], 'loss_uet')
    assert [tuple(s.shape[-2:]) for s in samples] == [(4, 4), (2, 2), (1, 1)]
    model.train()
    assert torch.isfinite(model(**data, mode='loss')['loss_uet'])


def test_other_losses_are_untouched_beside_an_mc_spec():
    torch.manual_seed(0)
    model = MODELS.build(distiller_cfg(losses={'loss_uet': uet_spec(), 'loss_fgd': fgd_spec()}))
    model.train()
    losses = model(**make_batch(model), mode='loss')
    assert torch.isfinite(losses['loss_uet']) and torch.isfinite(losses['loss_fgd'])
