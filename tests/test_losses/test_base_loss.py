"""Tests of the shared argument convention in mmkd_plugins/losses/base.py."""
import numpy as np
import pytest
import torch
from torch import nn

from mmkd_plugins.losses import CWDLoss, FeatureMSELoss, PKDLoss
from mmkd_plugins.losses.base import (BaseDistillLoss, prepare_pairs, prepare_weights,
                                      weighted_mean)

SIMPLE_LOSSES = [FeatureMSELoss, PKDLoss, CWDLoss]


class AbsDiffLoss(BaseDistillLoss):
    """Minimal concrete loss: sum of |w * (s - t)| per level."""

    def level_loss(self, level, student, teacher, weight, data_samples):
        diff = (student - teacher).abs()
        return (diff if weight is None else diff * weight).sum()


class ConvLoss(BaseDistillLoss):
    """A loss with a conv inside, to observe autocast."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.seen_dtype = None

    def level_loss(self, level, student, teacher, weight, data_samples):
        out = self.conv(student)
        self.seen_dtype = out.dtype
        return (out - teacher).pow(2).sum()


def feats(*shapes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(*s, generator=g) for s in shapes)


@pytest.mark.parametrize('cls', SIMPLE_LOSSES + [AbsDiffLoss])
def test_negative_loss_weight_rejected(cls):
    with pytest.raises(ValueError, match=r'loss_weight must be >= 0, got -1'):
        cls(loss_weight=-1)
    with pytest.raises(TypeError, match=r'loss_weight must be a real number'):
        cls(loss_weight='1')


# ---------------------------------------------------------------- inputs
@pytest.mark.parametrize('cls', SIMPLE_LOSSES + [AbsDiffLoss])
def test_input_errors(cls):
    loss = cls()
    s0, s1, t1 = feats((2, 3, 4, 4), (2, 3, 2, 2), (2, 5, 2, 2))
    with pytest.raises(ValueError,
                       match=r'level 1: student \(2, 3, 2, 2\) vs '
                       r'teacher \(2, 5, 2, 2\)'):
        loss((s0, s1), (s0, t1))
    with pytest.raises(ValueError, match=r'number of levels differs: '
                       r'student has 2, teacher has 1'):
        loss((s0, s1), (s0, ))
    with pytest.raises(ValueError, match=r'at least one level, got 0 and 0'):
        loss((), ())
    empty = torch.zeros(0, 3, 4, 4)
    with pytest.raises(ValueError, match=r'empty batch: level 0'):
        loss(empty, empty)
    no_cells = torch.zeros(2, 3, 0, 4)
    with pytest.raises(ValueError, match=r'level 0: empty feature map'):
        loss(no_cells, no_cells)
    flat = torch.zeros(2, 3, 4)
    with pytest.raises(ValueError, match=r'level 0: expected \(N, C, H, W\)'):
        loss(flat, flat)
    with pytest.raises(TypeError, match=r'level 1: teacher must be a Tensor'):
        loss((s0, s1), (s0, 'x'))
    with pytest.raises(TypeError, match=r'student must be a Tensor or a '
                       r'tuple/list'):
        loss({'a': s0}, s0)


@pytest.mark.parametrize('cls', SIMPLE_LOSSES + [AbsDiffLoss])
def test_weight_errors(cls):
    loss = cls()
    s0, s1 = feats((2, 3, 4, 4), (2, 3, 2, 2))
    ok = (torch.ones(2, 1, 4, 4), torch.ones(2, 3, 1, 1))
    loss((s0, s1), (s1.new_zeros(2, 3, 4, 4), s1), weights=ok)  # accepted
    with pytest.raises(ValueError, match=r'weights has 1 levels but the '
                       r'features have 2'):
        loss((s0, s1), (s0, s1), weights=(ok[0], ))
    with pytest.raises(ValueError, match=r'level 1: weights shape '
                       r'\(2, 1, 4, 4\) is not broadcastable to features '
                       r'\(2, 3, 2, 2\)'):
        loss((s0, s1), (s0, s1), weights=(ok[0], ok[0]))
    # Broadcasting must not grow the feature shape either.
    with pytest.raises(ValueError, match=r'level 0: weights shape '
                       r'\(3, 2, 3, 4, 4\)'):
        loss((s0, s1), (s0, s1),
             weights=(torch.ones(3, 2, 3, 4, 4), ok[1]))
    negative = ok[1].clone()
    negative[0, 0] = -0.5
    with pytest.raises(ValueError, match=r'level 1: weights must be '
                       r'non-negative'):
        loss((s0, s1), (s0, s1), weights=(ok[0], negative))


def test_prepare_pairs_casts_and_detaches():
    s = torch.randn(2, 3, 4, 4, dtype=torch.float16, requires_grad=True)
    t = torch.randn(2, 3, 4, 4, dtype=torch.float16, requires_grad=True)
    (s32, ), (t32, ) = prepare_pairs(s, t)
    assert s32.dtype == torch.float32 and t32.dtype == torch.float32
    assert s32.requires_grad and not t32.requires_grad


def test_prepare_weights_keeps_gradient_and_none():
    f = feats((2, 3, 4, 4))
    assert prepare_weights(None, f) == [None]
    w = torch.rand(2, 1, 4, 4, dtype=torch.float16, requires_grad=True)
    (w32, ) = prepare_weights(w, f)
    assert w32.dtype == torch.float32 and w32.requires_grad


# ---------------------------------------------------------------- forward
def test_forward_sums_levels_and_applies_loss_weight():
    s = feats((2, 3, 4, 4), (2, 3, 2, 2), seed=1)
    t = feats((2, 3, 4, 4), (2, 3, 2, 2), seed=2)
    expected = sum(np.abs(a.numpy() - b.numpy()).sum() for a, b in zip(s, t))
    out = AbsDiffLoss(loss_weight=0.25)(s, t)
    assert out.shape == ()
    assert out.item() == pytest.approx(0.25 * expected, rel=1e-5)


def test_single_tensor_equals_one_tuple():
    s, t = feats((2, 3, 4, 4), (2, 3, 4, 4))
    loss = AbsDiffLoss()
    assert torch.equal(loss(s, t), loss((s, ), [t]))


def test_teacher_never_gets_gradient():
    s, t = feats((2, 3, 4, 4), (2, 3, 4, 4))
    s.requires_grad_(True)
    t.requires_grad_(True)
    AbsDiffLoss()(s, t).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None


def test_fp16_inputs_give_float32():
    s, t = feats((2, 3, 4, 4), (2, 3, 4, 4))
    out = AbsDiffLoss()(s.half(), t.half(), weights=torch.ones(1).half())
    assert out.dtype == torch.float32 and torch.isfinite(out)


def test_autocast_is_disabled_inside_the_loss():
    loss = ConvLoss()
    s, t = feats((2, 3, 4, 4), (2, 3, 4, 4))
    with torch.autocast('cpu', dtype=torch.bfloat16):
        # Sanity check that autocast would otherwise lower the conv.
        assert loss.conv(s).dtype == torch.bfloat16
        out = loss(s, t)
    assert loss.seen_dtype == torch.float32
    assert out.dtype == torch.float32


def test_base_level_loss_is_abstract():
    s, t = feats((1, 1, 2, 2), (1, 1, 2, 2))
    with pytest.raises(NotImplementedError):
        BaseDistillLoss()(s, t)


# ---------------------------------------------------------------- weighting
def test_weighted_mean_matches_explicit_formula():
    e, = feats((2, 3, 2, 2), seed=3)
    e = e.abs()
    w = torch.rand(2, 1, 2, 2, generator=torch.Generator().manual_seed(4))
    e_np, w_np = e.numpy(), w.numpy()
    num = 0.0
    for n in range(2):
        for c in range(3):
            for y in range(2):
                for x in range(2):
                    num += w_np[n, 0, y, x] * e_np[n, c, y, x]
    # The weight multiplies; the mean divides by the elements (losses/base.py).
    assert weighted_mean(e, w).item() == pytest.approx(num / e.numel(), rel=1e-5)
    assert weighted_mean(e, None).item() == pytest.approx(e_np.mean(),
                                                          rel=1e-6)


def test_weighted_mean_ones_equal_none_and_constants_scale():
    e, = feats((2, 3, 5, 4), seed=5)
    e = e.pow(2)
    plain = weighted_mean(e, None)
    for shape in [(2, 3, 5, 4), (2, 1, 5, 4), (2, 3, 1, 1), (1, )]:
        assert torch.equal(weighted_mean(e, torch.ones(shape)), plain)
        scaled = weighted_mean(e, torch.full(shape, 7.3))
        assert torch.allclose(scaled, 7.3 * plain, rtol=1e-6, atol=0)


def test_weighted_mean_all_zero_weight_is_zero():
    e, = feats((2, 3, 2, 2))
    assert weighted_mean(e.abs(), torch.zeros(2, 1, 2, 2)).item() == 0.0
