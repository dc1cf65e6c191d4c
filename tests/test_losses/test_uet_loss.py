"""Tests of UncertaintyAwareLoss (UET) and its pure pieces."""
import math

import pytest
import torch
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmkd_plugins.losses import (BaseDistillLoss, FeatureMSELoss, UncertaintyAwareLoss,
                                 add_uncertainty, mc_uncertainty, minmax_per_image,
                                 uncertainty_weights)
from mmkd_plugins.losses.uet_loss import fit_to

SHAPES = ((2, 8, 8, 8), (2, 8, 4, 4))
BOXES = [[[0., 0., 16., 12.], [20., 20., 30., 31.]], []]  # image 1 has none


def data_samples(boxes_list=BOXES, hw=(32, 32)):
    out = []
    for boxes in boxes_list:
        ds = DetDataSample(metainfo=dict(batch_input_shape=hw, img_shape=hw))
        b = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
        ds.gt_instances = InstanceData(bboxes=b, labels=torch.zeros(len(b), dtype=torch.long))
        out.append(ds)
    return out


def levels(seed=0, shapes=SHAPES, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(*s, generator=g) * scale for s in shapes)


def mc_var(teacher, seed=1):
    """A non-uniform MC variance per level, (N, C, H, W)."""
    g = torch.Generator().manual_seed(seed)
    return tuple(0.1 * torch.rand(*t.shape, generator=g) for t in teacher)


def uniform_var(teacher, value=0.25):
    return tuple(torch.full_like(t, value) for t in teacher)


def uet(host='FeatureMSELoss', **kwargs):
    host_cfg = dict(type=host)
    if host == 'FGDLoss':
        host_cfg.update(in_channels=8, num_levels=2, alpha_fg=1.0, beta_bg=1.0)
    return UncertaintyAwareLoss(host=host_cfg, **kwargs)


# ------------------------------------------------------------ pure pieces
@pytest.mark.parametrize('reduce,shape', [('spatial', (2, 1, 4, 5)),
                                          ('channel', (2, 3, 1, 1)),
                                          ('both', (2, 3, 4, 5))])
def test_mc_uncertainty_is_the_rms_std(reduce, shape):
    var = torch.rand(2, 3, 4, 5, generator=torch.Generator().manual_seed(0))
    dims = {'spatial': (1, ), 'channel': (2, 3), 'both': ()}[reduce]
    expected = (var.mean(dim=dims, keepdim=True) if dims else var).sqrt()
    u = mc_uncertainty(var.half(), reduce)
    assert u.shape == shape and u.dtype == torch.float32
    torch.testing.assert_close(u, expected, rtol=1e-3, atol=1e-4)
    assert torch.equal(mc_uncertainty(torch.zeros(2, 3, 4, 5), reduce), torch.zeros(shape))


def test_minmax_and_weights():
    u = torch.tensor([[0., 1., 2., 4.], [3., 3., 3., 3.]]).reshape(2, 1, 2, 2)
    torch.testing.assert_close(minmax_per_image(u).flatten(1),
                               torch.tensor([[0., .25, .5, 1.], [0., 0., 0., 0.]]))
    w = uncertainty_weights(u, strength=2.0)
    raw = torch.exp(-2.0 * torch.tensor([0., .25, .5, 1.]))
    torch.testing.assert_close(w[0].flatten(), raw / raw.mean())
    # Mean 1 per image, decreasing in U, span at most exp(strength).
    torch.testing.assert_close(w.flatten(1).mean(1), torch.ones(2))
    assert (w[0].flatten().diff() < 0).all()
    assert w[0].max() / w[0].min() == pytest.approx(math.exp(2.0))
    # Uniform U (image 1) and strength 0 give exact ones.
    assert torch.equal(w[1], torch.ones(1, 2, 2))
    assert torch.equal(uncertainty_weights(u, 0.0), torch.ones_like(u))
    # A huge strength stays finite: the most certain location keeps exp(0).
    assert torch.isfinite(uncertainty_weights(u, 1e4)).all()
    # A spread at float rounding level (1e-7 of the values) is no spread;
    # 1e-3 of the values is.
    for rel, spread in ((1e-7, False), (1e-3, True)):
        v = torch.tensor([3., 3. * (1 + rel), 3., 3.]).reshape(1, 1, 2, 2)
        assert bool(minmax_per_image(v).any()) == spread, rel


def test_add_uncertainty_is_the_teacher_plus_its_std():
    teacher = torch.tensor([3., -3., .5, 0.]).reshape(1, 4, 1, 1)
    u = torch.tensor([.2, .4, 0., 1.]).reshape(1, 4, 1, 1)
    torch.testing.assert_close(add_uncertainty(teacher, u, 1.5).flatten(),
                               torch.tensor([3.3, -2.4, .5, 1.5]))
    # A spatial map is added to every channel of its location.
    spatial = add_uncertainty(torch.zeros(1, 3, 1, 2), torch.tensor([[[[1., 2.]]]]), 1.0)
    assert torch.equal(spatial, torch.tensor([1., 2.]).expand(1, 3, 1, 2))
    # Zero uncertainty or zero strength keep the teacher bit for bit.
    f = levels()[0]
    assert torch.equal(add_uncertainty(f, torch.zeros(2, 1, 8, 8), 3.0), f)
    assert torch.equal(add_uncertainty(f, torch.rand(2, 1, 8, 8), 0.0), f)


def test_fit_to_upsamples_spatial_maps_only():
    feat = torch.zeros(2, 8, 8, 8)
    assert fit_to(torch.rand(2, 1, 4, 4), feat).shape == (2, 1, 8, 8)
    channel = torch.rand(2, 8, 1, 1)
    assert fit_to(channel, feat) is channel
    assert (fit_to(torch.rand(2, 8, 4, 4), feat) >= 0).all()


# --------------------------------------------------------------- the loss
@pytest.mark.parametrize('host', ['FGDLoss', 'PKDLoss', 'CWDLoss', 'FeatureMSELoss'])
@pytest.mark.parametrize('reduce', ['spatial', 'channel', 'both'])
def test_weight_mode_with_uniform_uncertainty_is_the_host(host, reduce):
    loss = uet(host, reduce=reduce, strength=3.0)
    student, teacher = levels(0), levels(1)
    ds = data_samples()
    expected = loss.host(student, teacher, data_samples=ds)
    for var in (uniform_var(teacher), uniform_var(teacher, 0.0)):
        got = loss(student, teacher, data_samples=ds, teacher_var=var)
        assert torch.equal(got, expected)
    # Non-uniform uncertainty changes it: the test above can fail.
    got = loss(student, teacher, data_samples=ds, teacher_var=mc_var(teacher))
    assert not torch.equal(got, expected)


def test_weight_mode_transfers_less_where_the_teacher_is_unsure():
    loss = uet(strength=2.0)
    teacher = levels(0, shapes=((1, 4, 4, 4), ))
    var = list(uniform_var(teacher))
    var[0] = var[0].clone()
    var[0][..., 0, 0] *= 10  # one very uncertain location
    for where, cmp in (((0, 0), 'less'), ((3, 3), 'more')):
        student = [teacher[0].clone()]
        student[0][..., where[0], where[1]] += 1.0  # the error sits there
        host = loss.host(student, teacher)
        got = loss(student, teacher, teacher_var=tuple(var))
        assert (got < host) if cmp == 'less' else (got > host), where


@pytest.mark.parametrize('host', ['FGDLoss', 'PKDLoss', 'FeatureMSELoss'])
def test_add_mode_is_the_host_towards_the_teacher_plus_its_std(host):
    loss = uet(host, mode='add', reduce='both', strength=1.5)
    student, teacher = levels(0), levels(1)
    var, ds = mc_var(teacher), data_samples()
    target = tuple(t + 1.5 * v.sqrt() for t, v in zip(teacher, var))
    got = loss(student, teacher, data_samples=ds, teacher_var=var)
    torch.testing.assert_close(got, loss.host(student, target, data_samples=ds))
    assert not torch.allclose(got, loss.host(student, teacher, data_samples=ds))
    # Zero variance: the host with the teacher itself, bit for bit.
    assert torch.equal(loss(student, teacher, data_samples=ds,
                            teacher_var=uniform_var(teacher, 0.0)),
                       loss.host(student, teacher, data_samples=ds))


def test_add_mode_hand_computed():
    # MSE over two elements: student (1, 0), teacher (2, 0), variances
    # (0.25, 0.04), strength 2: targets (2 + 2 * 0.5, 0 + 2 * 0.2) = (3, 0.4),
    # loss ((1 - 3)^2 + 0.4^2) / 2 = 2.08 (the host alone: 0.5).
    student = torch.tensor([1., 0.]).reshape(1, 2, 1, 1)
    teacher = torch.tensor([2., 0.]).reshape(1, 2, 1, 1)
    var = torch.tensor([.25, .04]).reshape(1, 2, 1, 1)
    got = uet(mode='add', strength=2.0, reduce='both')(student, teacher, teacher_var=var)
    assert got.item() == pytest.approx(2.08)
    # reduce='spatial': U = sqrt((0.25 + 0.04) / 2) at the one location.
    u = math.sqrt(0.145)
    got = uet(mode='add', strength=2.0)(student, teacher, teacher_var=var)
    assert got.item() == pytest.approx(((1 - 2 - 2 * u) ** 2 + (2 * u) ** 2) / 2)


def test_extra_weights_multiply_and_loss_weight_scales():
    student, teacher = levels(0), levels(1)
    extra = tuple(torch.rand(2, 1, t.shape[2], t.shape[3]) for t in teacher)
    got = uet(loss_weight=2.0)(student, teacher, weights=extra, teacher_var=uniform_var(teacher))
    assert torch.equal(got, 2.0 * FeatureMSELoss()(student, teacher, weights=extra))
    zero = uniform_var(teacher, 0.0)
    got = uet(mode='add')(student, teacher, weights=extra, teacher_var=zero)
    assert torch.equal(got, FeatureMSELoss()(student, teacher, weights=extra))


@pytest.mark.parametrize('mode', ['weight', 'add'])
def test_no_nan_or_inf(mode):
    loss = uet('FGDLoss', mode=mode)
    student, teacher = levels(0), levels(1)
    student = tuple(s.requires_grad_() for s in student)
    no_boxes = data_samples([[], []])
    cases = [
        (teacher, uniform_var(teacher, 0.0), no_boxes),  # p = 0
        (tuple(torch.full_like(t, 2.) for t in teacher),  # constant features
         uniform_var(teacher, 0.0), data_samples()),
        (tuple(t.half() for t in teacher),  # fp16
         tuple(v.half() for v in mc_var(teacher)), data_samples()),
    ]
    for tea, var, ds in cases:
        got = loss(tuple(s.half() if tea[0].dtype == torch.half else s for s in student),
                   tea, data_samples=ds, teacher_var=var)
        assert got.dtype == torch.float32 and torch.isfinite(got)
        grads = torch.autograd.grad(got, student, allow_unused=True)
        assert all(g is None or torch.isfinite(g).all() for g in grads)


def test_lower_resolution_variance():
    student, teacher = levels(0), levels(1)
    small = tuple(v[..., ::2, ::2] for v in mc_var(teacher))
    for mode in ('weight', 'add'):
        got = uet(mode=mode, scale=0.5)(student, teacher, teacher_var=small)
        assert torch.isfinite(got)
    with pytest.raises(ValueError, match=r'level 0: teacher_var \(2, 8, 4, 4\) does not fit'):
        uet()(student, teacher, teacher_var=small)


def test_head_variance_may_have_other_channels():
    student, teacher = levels(0), levels(1)
    probs = tuple(torch.rand(2, 5, *t.shape[2:]) / 4 for t in teacher)
    assert torch.isfinite(uet(placement='head')(student, teacher, teacher_var=probs))
    with pytest.raises(ValueError, match='does not fit the teacher'):
        uet()(student, teacher, teacher_var=probs)


def test_forward_errors():
    student, teacher = levels(0), levels(1)
    with pytest.raises(ValueError, match='needs teacher_var'):
        uet()(student, teacher)
    with pytest.raises(ValueError, match='teacher_var has 1 levels'):
        uet()(student, teacher, teacher_var=mc_var(teacher)[:1])
    with pytest.raises(ValueError, match=r'expected \(N, C, H, W\)'):
        uet()(student, teacher, teacher_var=tuple(v[None] for v in mc_var(teacher)))


# --------------------------------------------------------------- building
def test_builds_from_registry_and_forwards_probed_arguments():
    loss = MODELS.build(dict(type='UncertaintyAwareLoss', host=dict(type='FGDLoss'),
                             in_channels=8, num_levels=2))
    assert loss.host.in_channels == 8 and loss.host.num_levels == 2
    assert UncertaintyAwareLoss.accepts_teacher_var
    # Hosts without these arguments do not get them.
    assert isinstance(uet('PKDLoss', in_channels=8).host, MODELS.get('PKDLoss'))
    with pytest.raises(ValueError, match='host.in_channels=4 but the features have 8'):
        UncertaintyAwareLoss(host=dict(type='FGDLoss', in_channels=4), in_channels=8)


class NoWeightsLoss(BaseDistillLoss):

    def forward(self, student, teacher, data_samples=None):
        return torch.zeros(())


@pytest.mark.parametrize('kwargs,error,match', [
    (dict(host='FGDLoss'), TypeError, 'host must be a loss config dict'),
    (dict(host=dict(type='NoSuchLoss')), ValueError, "host.type: unknown loss 'NoSuchLoss'"),
    (dict(host=dict(type='MSELoss')), TypeError, 'is not a distillation loss'),
    (dict(host=dict(type=NoWeightsLoss)), TypeError, 'takes no `weights`'),
    (dict(host=dict(type='UncertaintyAwareLoss', host=dict(type='PKDLoss'))), TypeError,
     'takes the MC variance itself'),
    (dict(mode='mix'), ValueError, r"mode must be one of \('weight', 'add'\)"),
    (dict(mode='residual'), ValueError, "mode='residual' was removed: it shrank the teacher"),
    (dict(mode='mean'), ValueError, "mode='mean' was removed: it replaced the teacher"),
    (dict(reduce='pixel'), ValueError, 'reduce must be one of'),
    (dict(placement='roi'), ValueError, 'placement must be one of'),
    (dict(placement='backbone'), ValueError, "placement='backbone' was removed"),
    (dict(placement='head', mode='add'), ValueError, "needs mode='weight'"),
    (dict(placement='head', reduce='channel'), ValueError, "reduce='spatial'"),
    (dict(scale=1.5), ValueError, r'scale must be in \(0, 1\]'),
    (dict(strength=-1.0), ValueError, 'strength must be >= 0'),
])
def test_build_errors(kwargs, error, match):
    kwargs.setdefault('host', dict(type='FeatureMSELoss'))
    with pytest.raises(error, match=match):
        UncertaintyAwareLoss(**kwargs)


def test_removed_argument_is_named():
    from mmkd_plugins.checks import check_loss_args
    with pytest.raises(ValueError, match=r"k: UncertaintyAwareLoss has no argument\(s\) "
                       r"\['uncertainty'\]"):
        check_loss_args(UncertaintyAwareLoss, dict(uncertainty='relative'), 'k')
