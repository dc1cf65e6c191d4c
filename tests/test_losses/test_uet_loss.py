"""Tests of UncertaintyAwareLoss (UET) and its pure pieces."""
import math

import pytest
import torch
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmkd_plugins.losses import (BaseDistillLoss, FeatureMSELoss,
                                 UncertaintyAwareLoss, mc_uncertainty,
                                 minmax_per_image, relative_uncertainty,
                                 shrink_target, uncertainty_weights)
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


def mc_samples(teacher, passes=4, noise=0.3, seed=1):
    """Noisy copies of the teacher, (T, N, C, H, W) per level."""
    g = torch.Generator().manual_seed(seed)
    return tuple(t + noise * torch.randn(passes, *t.shape, generator=g) for t in teacher)


def uniform_samples(teacher, passes=4):
    """Samples whose spread is the same at every element (exactly)."""
    return tuple(torch.arange(passes, dtype=torch.float32).reshape(-1, 1, 1, 1, 1)
                 .expand(passes, *t.shape).clone() for t in teacher)


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
    g = torch.Generator().manual_seed(0)
    samples = torch.randn(6, 2, 3, 4, 5, generator=g) * 3 + 10
    dims = {'spatial': (1, ), 'channel': (2, 3), 'both': ()}[reduce]
    var = samples.var(dim=0, unbiased=True)
    expected = (var.mean(dim=dims, keepdim=True) if dims else var).sqrt()
    u = mc_uncertainty(samples, reduce)
    assert u.shape == shape and u.dtype == torch.float32
    torch.testing.assert_close(u, expected, rtol=1e-5, atol=1e-6)
    # Agreeing passes give exactly zero, for large values too.
    same = (torch.randn(2, 3, 4, 5, generator=g) * 1e4).expand(6, -1, -1, -1, -1)
    assert torch.equal(mc_uncertainty(same, reduce), torch.zeros(shape))


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


def test_shrink_target():
    teacher = torch.tensor([3., -3., .5, -.5, 0.]).reshape(1, 5, 1, 1)
    torch.testing.assert_close(shrink_target(teacher, torch.ones(1, 1, 1, 1), 1.0).flatten(),
                               torch.tensor([2., -2., 0., 0., 0.]))
    # Zero uncertainty or zero strength keep the teacher bit for bit.
    f = levels()[0]
    assert torch.equal(shrink_target(f, torch.zeros(2, 1, 8, 8), 3.0), f)
    assert torch.equal(shrink_target(f, torch.rand(2, 1, 8, 8), 0.0), f)


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
    for samples in (uniform_samples(teacher), tuple(t.expand(4, *t.shape) for t in teacher)):
        got = loss(student, teacher, data_samples=ds, teacher_samples=samples)
        assert torch.equal(got, expected)
    # Non-uniform uncertainty changes it: the test above can fail.
    got = loss(student, teacher, data_samples=ds, teacher_samples=mc_samples(teacher))
    assert not torch.equal(got, expected)


def test_weight_mode_transfers_less_where_the_teacher_is_unsure():
    loss = uet(strength=2.0)
    teacher = levels(0, shapes=((1, 4, 4, 4), ))
    samples = list(uniform_samples(teacher))
    samples[0] = samples[0].clone()
    samples[0][..., 0, 0] *= 10  # one very uncertain location
    for where, cmp in (((0, 0), 'less'), ((3, 3), 'more')):
        student = [teacher[0].clone()]
        student[0][..., where[0], where[1]] += 1.0  # the error sits there
        host = loss.host(student, teacher)
        got = loss(student, teacher, teacher_samples=tuple(samples))
        assert (got < host) if cmp == 'less' else (got > host), where


def test_relative_uncertainty_removes_the_feature_scale():
    """Multiplicative MC noise (spread proportional to |F|): absolute U
    down-weights the strong location, relative U weighs both alike; a
    location noisier for its size gets the lowest relative weight."""
    feat = torch.ones(1, 2, 1, 3)
    feat[..., 1] = 10.0  # a strong activation, e.g. on an object
    u = torch.tensor([0.1, 1.0, 0.3]).reshape(1, 1, 1, 3)  # 10 % , 10 %, 30 % of |F|
    rel = relative_uncertainty(u, feat, 'spatial')
    torch.testing.assert_close(rel, torch.tensor([0.1, 0.1, 0.3]).reshape(1, 1, 1, 3))
    w_abs, w_rel = uncertainty_weights(u, 1.0), uncertainty_weights(rel, 1.0)
    assert w_abs[..., 1] < w_abs[..., 0]
    assert w_rel[..., 1] == w_rel[..., 0] and w_rel[..., 2] < w_rel[..., 0]
    # Per-channel and per-element reductions divide by the matching RMS.
    feat_c = torch.tensor([2.0, 4.0]).reshape(1, 2, 1, 1).expand(1, 2, 2, 2)
    torch.testing.assert_close(relative_uncertainty(torch.ones(1, 2, 1, 1), feat_c, 'channel'),
                               torch.tensor([0.5, 0.25]).reshape(1, 2, 1, 1))
    # Near-zero activations are floored at 1 % of the image's mean RMS; an
    # all-zero feature gives 0, not inf or NaN.
    feat[..., 0] = 1e-9
    assert relative_uncertainty(u, feat, 'both').max() <= 1.0 / (0.01 * 11 / 3) + 1e-4
    zero = relative_uncertainty(torch.zeros(1, 1, 2, 2), torch.zeros(1, 3, 2, 2))
    assert torch.equal(zero, torch.zeros(1, 1, 2, 2))


def test_relative_mode_with_multiplicative_noise_is_the_host():
    """Samples ``F * (1 + z_t)``: U is proportional to |F| everywhere, so
    relative U is uniform and the loss is the host's, while absolute U is not."""
    teacher = tuple(t.sign() * (t.abs() + 0.5) for t in levels(0))  # clear of the floor
    z = torch.tensor([-0.2, 0.1, 0.3, -0.1]).reshape(-1, 1, 1, 1, 1)
    samples = tuple(t * (1 + z) for t in teacher)
    student = levels(5)
    host = uet(uncertainty='relative').host(student, teacher)
    rel = uet(uncertainty='relative', reduce='both')(student, teacher, teacher_samples=samples)
    absolute = uet(reduce='both')(student, teacher, teacher_samples=samples)
    torch.testing.assert_close(rel, host, rtol=1e-4, atol=1e-6)
    assert not torch.allclose(absolute, host, rtol=1e-3)


@pytest.mark.parametrize('mode', ['residual', 'mean'])
def test_residual_and_mean_modes_are_finite_and_differ(mode):
    loss = uet('FGDLoss', mode=mode)
    student, teacher = levels(0), levels(1)
    ds = data_samples()
    got = loss(student, teacher, data_samples=ds, teacher_samples=mc_samples(teacher))
    assert torch.isfinite(got) and got > 0
    assert got != loss.host(student, teacher, data_samples=ds)


def test_mode_targets():
    student, teacher = levels(0), levels(1)
    samples = mc_samples(teacher)
    mse = FeatureMSELoss()
    # mean: the MC mean as target; strength 0 leaves it unweighted.
    got = uet(mode='mean', strength=0.0)(student, teacher, teacher_samples=samples)
    torch.testing.assert_close(got, mse(student, tuple(s.mean(0) for s in samples)))
    # residual: the teacher soft-thresholded by 1.5 MC standard deviations.
    got = uet(mode='residual', strength=1.5, reduce='both')(
        student, teacher, teacher_samples=samples)
    target = tuple(shrink_target(t, s.std(0), 1.5) for t, s in zip(teacher, samples))
    torch.testing.assert_close(got, mse(student, target))
    # Zero variance: the residual target is the teacher itself.
    flat = tuple(t.expand(3, *t.shape) for t in teacher)
    assert torch.equal(uet(mode='residual')(student, teacher, teacher_samples=flat),
                       mse(student, teacher))


def test_extra_weights_multiply_and_loss_weight_scales():
    student, teacher = levels(0), levels(1)
    samples = uniform_samples(teacher)
    extra = tuple(torch.rand(2, 1, t.shape[2], t.shape[3]) for t in teacher)
    got = uet(loss_weight=2.0)(student, teacher, weights=extra, teacher_samples=samples)
    assert torch.equal(got, 2.0 * FeatureMSELoss()(student, teacher, weights=extra))


@pytest.mark.parametrize('mode', ['weight', 'residual', 'mean'])
def test_no_nan_or_inf(mode):
    loss = uet('FGDLoss', mode=mode)
    student, teacher = levels(0), levels(1)
    student = tuple(s.requires_grad_() for s in student)
    no_boxes = data_samples([[], []])
    cases = [
        (teacher, tuple(t.expand(4, *t.shape) for t in teacher), no_boxes),  # p = 0
        (tuple(torch.full_like(t, 2.) for t in teacher),  # constant features
         tuple(torch.full((4, *t.shape), 2.) for t in teacher), data_samples()),
        (tuple(t.half() for t in teacher),  # fp16
         tuple(s.half() for s in mc_samples(teacher)), data_samples()),
    ]
    for tea, samples, ds in cases:
        got = loss(tuple(s.half() if tea[0].dtype == torch.half else s for s in student),
                   tea, data_samples=ds, teacher_samples=samples)
        assert got.dtype == torch.float32 and torch.isfinite(got)
        grads = torch.autograd.grad(got, student, allow_unused=True)
        assert all(g is None or torch.isfinite(g).all() for g in grads)


def test_fp16_spread_is_computed_in_float32():
    # A spread of 1e3 squares to 1e6, past fp16's largest value (65504).
    samples = (torch.tensor([0., 2e3]).reshape(2, 1, 1, 1, 1) - 1e3).half()
    assert mc_uncertainty(samples, 'both').item() == pytest.approx(2e3 / math.sqrt(2))


def test_lower_resolution_samples():
    student, teacher = levels(0), levels(1)
    small = tuple(s[..., ::2, ::2] for s in mc_samples(teacher))
    for mode in ('weight', 'residual'):
        got = uet(mode=mode, scale=0.5)(student, teacher, teacher_samples=small)
        assert torch.isfinite(got)
    with pytest.raises(ValueError, match=r'level 0: teacher_samples \(4, 2, 8, 4, 4\)'):
        uet()(student, teacher, teacher_samples=small)


def test_head_samples_may_have_other_channels():
    student, teacher = levels(0), levels(1)
    probs = tuple(torch.rand(4, 2, 5, *t.shape[2:]) for t in teacher)
    assert torch.isfinite(uet(placement='head')(student, teacher, teacher_samples=probs))
    with pytest.raises(ValueError, match='do not fit the teacher'):
        uet()(student, teacher, teacher_samples=probs)


def test_forward_errors():
    student, teacher = levels(0), levels(1)
    with pytest.raises(ValueError, match='needs teacher_samples'):
        uet()(student, teacher)
    with pytest.raises(ValueError, match='teacher_samples has 1 levels'):
        uet()(student, teacher, teacher_samples=mc_samples(teacher)[:1])
    with pytest.raises(ValueError, match=r'T >= 2'):
        uet()(student, teacher, teacher_samples=tuple(s[:1] for s in mc_samples(teacher)))


# --------------------------------------------------------------- building
def test_builds_from_registry_and_forwards_probed_arguments():
    loss = MODELS.build(dict(type='UncertaintyAwareLoss', host=dict(type='FGDLoss'),
                             in_channels=8, num_levels=2))
    assert loss.host.in_channels == 8 and loss.host.num_levels == 2
    assert UncertaintyAwareLoss.accepts_teacher_samples
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
     'takes teacher samples itself'),
    (dict(mode='mix'), ValueError, 'mode must be one of'),
    (dict(reduce='pixel'), ValueError, 'reduce must be one of'),
    (dict(placement='roi'), ValueError, 'placement must be one of'),
    (dict(placement='head', mode='residual'), ValueError, "needs mode='weight'"),
    (dict(placement='head', reduce='channel'), ValueError, "reduce='spatial'"),
    (dict(mode='mean', scale=0.5), ValueError, "mode='mean' needs samples at the teacher"),
    (dict(scale=1.5), ValueError, r'scale must be in \(0, 1\]'),
    (dict(strength=-1.0), ValueError, 'strength must be >= 0'),
    (dict(uncertainty='ratio'), ValueError, 'uncertainty must be one of'),
    (dict(uncertainty='relative', mode='residual'), ValueError, "needs mode='weight' or 'mean'"),
    (dict(uncertainty='relative', placement='head'), ValueError, "placement other than 'head'"),
])
def test_build_errors(kwargs, error, match):
    kwargs.setdefault('host', dict(type='FeatureMSELoss'))
    with pytest.raises(error, match=match):
        UncertaintyAwareLoss(**kwargs)
