"""Tests of PKDLoss."""
import math

import numpy as np
import pytest
import torch

from mmdet.registry import MODELS
from mmkd_plugins.losses import PKDLoss, pkd_level_loss, standardize


def pair(shape=(2, 3, 4, 5), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g), torch.randn(*shape, generator=g)


def explicit_standardize(x, eps=1e-6):
    """Per (n, c) map: (x - mean) / sqrt(population var + eps^2)."""
    x = x.double().numpy()
    out = np.empty_like(x)
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            m = x[n, c]
            mean = sum(m.ravel()) / m.size
            var = sum((v - mean)**2 for v in m.ravel()) / m.size
            out[n, c] = (m - mean) / math.sqrt(var + eps * eps)
    return out


def explicit_pkd(s, t, w=None):
    zs, zt = explicit_standardize(s), explicit_standardize(t)
    w = np.broadcast_to(
        np.ones(1) if w is None else w.double().numpy(), zs.shape)
    return (w * (zs - zt)**2).sum() / zs.size / 2  # weights multiply (losses/base.py)


def test_registered_with_published_default():
    loss = MODELS.build(dict(type='PKDLoss'))
    assert isinstance(loss, PKDLoss) and loss.loss_weight == 6.0


def test_identical_inputs_give_zero():
    s, _ = pair()
    assert PKDLoss()(s, s.clone()).item() == 0.0


def test_invariant_to_positive_affine_maps_per_channel():
    _, t = pair()
    scale = torch.tensor([0.5, 3.0, 10.0]).reshape(1, 3, 1, 1)
    shift = torch.tensor([-2.0, 0.0, 7.0]).reshape(1, 3, 1, 1)
    assert PKDLoss()(t * scale + shift, t).item() < 1e-4
    # A sign flip is maximal disagreement: r = -1, so 1 - r = 2 per map.
    assert PKDLoss(loss_weight=1.0)(-t, t).item() == pytest.approx(
        2.0, rel=1e-4)


def test_standardize_matches_explicit():
    s, _ = pair()
    np.testing.assert_allclose(standardize(s).numpy(),
                               explicit_standardize(s), rtol=1e-5, atol=1e-6)


def test_hand_computed_value():
    s = torch.tensor([[[[1., 2.], [3., 4.]]]])
    t = torch.tensor([[[[1., 2.], [4., 3.]]]])
    # Pearson r of (1,2,3,4) and (1,2,4,3) is 0.8, so the loss is 0.2.
    assert PKDLoss(loss_weight=1.0)(s, t).item() == pytest.approx(
        0.2, rel=1e-5)
    assert PKDLoss()(s, t).item() == pytest.approx(6 * 0.2, rel=1e-5)


def test_value_matches_explicit_formula_and_pearson():
    s, t = pair()
    got = PKDLoss(loss_weight=1.0)(s, t).item()
    assert got == pytest.approx(explicit_pkd(s, t), rel=1e-5)
    one_minus_r = [
        1 - np.corrcoef(s[n, c].numpy().ravel(), t[n, c].numpy().ravel())[0,
                                                                          1]
        for n in range(2) for c in range(3)
    ]
    assert got == pytest.approx(np.mean(one_minus_r), rel=1e-4)
    w = torch.rand(2, 3, 1, 1, generator=torch.Generator().manual_seed(1))
    assert pkd_level_loss(s, t, w).item() == pytest.approx(
        explicit_pkd(s, t, w), rel=1e-5)


def test_constant_maps_have_finite_gradient():
    # A 1x1 top level (small images) has zero variance in every map.
    s = torch.randn(2, 3, 1, 1, requires_grad=True)
    t = torch.randn(2, 3, 1, 1)
    out = PKDLoss()(s, t)
    out.backward()
    assert out.item() == 0.0
    assert torch.isfinite(s.grad).all()


def test_non_uniform_weight_moves_value_as_expected():
    _, t = pair((1, 2, 4, 4))
    s = t.clone()
    s[0, 0] = -t[0, 0]  # channel 0 anti-correlated, channel 1 perfect
    loss = PKDLoss(loss_weight=1.0)
    plain = loss(s, t)
    assert plain.item() == pytest.approx(1.0, rel=1e-4)  # (2 + 0) / 2
    assert loss(s, t, weights=torch.tensor([3., 1.]).reshape(1, 2, 1, 1)) \
        > plain
    assert loss(s, t, weights=torch.tensor([1., 3.]).reshape(1, 2, 1, 1)) \
        == plain  # the perfect channel's term is 0 whatever its weight
    assert loss(s, t, weights=torch.tensor([.5, 3.]).reshape(1, 2, 1, 1)) \
        < plain


def test_fp16_inputs_give_float32():
    s, t = pair()
    s16, t16 = (s * 100).half(), t.half()
    out = PKDLoss()(s16, t16)
    assert out.dtype == torch.float32 and torch.isfinite(out)
    assert out.item() == pytest.approx(
        6 * explicit_pkd(s16.float(), t16.float()), rel=1e-4)
