"""Tests of FeatureMSELoss."""
import numpy as np
import pytest
import torch

from mmdet.registry import MODELS
from mmkd_plugins.losses import FeatureMSELoss, feature_mse_level_loss


def pair(shape=(2, 3, 4, 5), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g), torch.randn(*shape, generator=g)


def explicit_mse(s, t, w=None):
    s, t = s.double().numpy(), t.double().numpy()
    w = np.ones(1) if w is None else w.double().numpy()
    w = np.broadcast_to(w, s.shape)
    num = 0.0
    for idx in np.ndindex(s.shape):
        num += w[idx] * (s[idx] - t[idx])**2
    return num / s.size  # weights multiply, unnormalised (losses/base.py)


def test_registered():
    loss = MODELS.build(dict(type='FeatureMSELoss', loss_weight=2.0))
    assert isinstance(loss, FeatureMSELoss) and loss.loss_weight == 2.0


def test_identical_inputs_give_zero():
    s, _ = pair()
    assert FeatureMSELoss()(s, s.clone()).item() == 0.0


def test_hand_computed_value():
    s = torch.tensor([[[[1., 2.], [3., 4.]]]])
    t = torch.tensor([[[[0., 2.], [5., 4.]]]])
    # (1 + 0 + 4 + 0) / 4 = 1.25, times loss_weight 2
    assert FeatureMSELoss(loss_weight=2.0)(s, t).item() == pytest.approx(2.5)


def test_value_matches_explicit_formula():
    s, t = pair()
    assert FeatureMSELoss()(s, t).item() == pytest.approx(
        explicit_mse(s, t), rel=1e-5)
    w = torch.rand(2, 1, 4, 5, generator=torch.Generator().manual_seed(1))
    assert feature_mse_level_loss(s, t, w).item() == pytest.approx(
        explicit_mse(s, t, w), rel=1e-5)


def test_non_uniform_weight_moves_value_as_expected():
    t = torch.zeros(1, 2, 3, 3)
    s = torch.full((1, 2, 3, 3), 0.1)
    s[0, :, 1, 1] = 2.0  # one badly imitated location
    loss = FeatureMSELoss()
    plain = loss(s, t)
    focus = torch.ones(1, 1, 3, 3)
    focus[0, 0, 1, 1] = 5.0
    ignore = torch.ones(1, 1, 3, 3)
    ignore[0, 0, 1, 1] = 0.0
    assert loss(s, t, weights=focus) > plain
    assert loss(s, t, weights=ignore) < plain
    # The 16 other terms, 0.01 each, over all 18 elements.
    assert loss(s, t, weights=ignore).item() == pytest.approx(16 * 0.01 / 18)


def test_fp16_inputs_give_float32():
    s, t = pair()
    out = FeatureMSELoss()(s.half(), t.half())
    assert out.dtype == torch.float32 and torch.isfinite(out)
    assert out.item() == pytest.approx(
        explicit_mse(s.half().float(), t.half().float()), rel=1e-5)
