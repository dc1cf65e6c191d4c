"""Tests of CWDLoss."""
import math

import numpy as np
import pytest
import torch

from mmdet.registry import MODELS
from mmkd_plugins.losses import CWDLoss, cwd_level_loss


def pair(shape=(2, 3, 4, 5), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g), torch.randn(*shape, generator=g)


def explicit_cwd(s, t, tau=1.0, w=None):
    """tau^2 / (N*C) * sum_{n,c} sum_hw w * p_t * log(p_t / p_s)."""
    s, t = s.double().numpy(), t.double().numpy()
    n_, c_ = s.shape[:2]
    w = np.broadcast_to(np.ones(1) if w is None else w.double().numpy(),
                        s.shape)
    total = 0.0
    for n in range(n_):
        for c in range(c_):
            es = [math.exp(v / tau) for v in s[n, c].ravel()]
            et = [math.exp(v / tau) for v in t[n, c].ravel()]
            for k, wk in enumerate(w[n, c].ravel()):
                ps, pt = es[k] / sum(es), et[k] / sum(et)
                total += wk * pt * math.log(pt / ps)
    return tau**2 * total / (n_ * c_)


def test_registered():
    loss = MODELS.build(dict(type='CWDLoss', temperature=2.0, loss_weight=5))
    assert isinstance(loss, CWDLoss)
    assert (loss.temperature, loss.loss_weight) == (2.0, 5.0)


def test_config_errors():
    with pytest.raises(ValueError, match=r'temperature must be > 0, got 0'):
        CWDLoss(temperature=0)
    with pytest.raises(ValueError, match=r'temperature must be > 0, got -1'):
        CWDLoss(temperature=-1.0)
    with pytest.raises(TypeError, match=r'temperature must be a real number'):
        CWDLoss(temperature='1')
    with pytest.raises(ValueError, match=r'loss_weight must be >= 0, got -2'):
        CWDLoss(loss_weight=-2)


def test_identical_inputs_give_zero():
    s, _ = pair()
    assert CWDLoss()(s, s.clone()).item() == 0.0
    # A per-channel offset does not change the spatial distribution.
    offset = torch.tensor([1.0, -3.0, 10.0]).reshape(1, 3, 1, 1)
    assert CWDLoss()(s + offset, s).item() == pytest.approx(0.0, abs=1e-6)


def test_hand_computed_value():
    # One channel, two positions: p_t = softmax(0, log 3) = (1/4, 3/4),
    # p_s uniform = (1/2, 1/2); KL = 1/4 log(1/2) + 3/4 log(3/2).
    t = torch.tensor([[[[0.0, math.log(3.0)]]]])
    s = torch.zeros(1, 1, 1, 2)
    kl = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)
    assert CWDLoss()(s, t).item() == pytest.approx(kl, rel=1e-6)
    # tau = 2 halves the logits and multiplies by 4.
    t2 = torch.tensor([[[[0.0, 2 * math.log(3.0)]]]])
    assert CWDLoss(temperature=2.0, loss_weight=3.0)(s, t2).item() == \
        pytest.approx(3 * 4 * kl, rel=1e-6)


@pytest.mark.parametrize('tau', [1.0, 0.5, 4.0])
def test_value_matches_explicit_formula(tau):
    s, t = pair()
    assert CWDLoss(temperature=tau)(s, t).item() == pytest.approx(
        explicit_cwd(s, t, tau), rel=1e-5)


def test_weighted_value_matches_explicit_formula():
    s, t = pair()
    g = torch.Generator().manual_seed(3)
    for shape in [(2, 1, 4, 5), (2, 3, 1, 1), (2, 3, 4, 5)]:
        w = torch.rand(*shape, generator=g)
        assert cwd_level_loss(s, t, 2.0, w).item() == pytest.approx(
            explicit_cwd(s, t, 2.0, w), rel=1e-5)


def test_non_uniform_weight_moves_value_as_expected():
    t = torch.zeros(1, 1, 2, 2)
    t[0, 0, 0, 0] = 3.0  # teacher peaks at the top-left position
    s = torch.zeros(1, 1, 2, 2)  # student is flat
    loss = CWDLoss()
    plain = loss(s, t)
    # The peak's KL term p_t log(p_t / p_s) is positive, the others are
    # negative, so weighting the peak raises the loss and vice versa.
    peak = torch.ones(1, 1, 2, 2)
    peak[0, 0, 0, 0] = 2.0
    rest = torch.full((1, 1, 2, 2), 2.0)
    rest[0, 0, 0, 0] = 1.0
    assert loss(s, t, weights=peak) > plain
    assert loss(s, t, weights=rest) < plain


def test_fp16_inputs_give_float32():
    s, t = pair()
    s16, t16 = (s * 30).half(), (t * 30).half()
    out = CWDLoss()(s16, t16)
    assert out.dtype == torch.float32 and torch.isfinite(out)
    assert out.item() == pytest.approx(
        explicit_cwd(s16.float(), t16.float()), rel=1e-4)
