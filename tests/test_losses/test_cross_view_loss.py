"""CrossViewLoss / DenseKDLoss against values computed by hand (plain math)."""
import math

import pytest
import torch

from mmkd_plugins.losses import (CrossViewLoss, DenseKDLoss, binary_kl, cross_view_terms,
                                 sigmoid_confidence, softmax_confidence, softmax_kl)


def _sig(z):
    return 1 / (1 + math.exp(-z))


def _bkl(s, t, temp):
    """Binary KL of one class, T^2 KL(Bern(sig(t/T)) || Bern(sig(s/T)))."""
    ps, pt = _sig(s / temp), _sig(t / temp)
    return temp**2 * (pt * math.log(pt / ps) + (1 - pt) * math.log((1 - pt) / (1 - ps)))


def _skl(s, t, temp):
    """Softmax KL of one row."""
    def soft(z):
        e = [math.exp(v / temp) for v in z]
        return [v / sum(e) for v in e]
    ps, pt = soft(s), soft(t)
    return temp**2 * sum(b * math.log(b / a) for a, b in zip(ps, pt))


def test_binary_kl_hand_value():
    # p_t = 0.75, p_s = 0.5: 0.75 ln 1.5 + 0.25 ln 0.5
    got = binary_kl(torch.tensor([0.]), torch.tensor([math.log(3)]), 1.0)
    assert got.item() == pytest.approx(0.75 * math.log(1.5) + 0.25 * math.log(0.5), rel=1e-5)
    got = binary_kl(torch.tensor([0.3]), torch.tensor([-1.2]), 2.0)
    assert got.item() == pytest.approx(_bkl(0.3, -1.2, 2.0), rel=1e-5)


def test_binary_kl_saturated_logits_are_finite():
    got = binary_kl(torch.tensor([-200., 200.]), torch.tensor([200., -200.]), 1.0)
    assert torch.isfinite(got).all() and (got > 100).all()
    assert binary_kl(torch.tensor([50.]), torch.tensor([50.]), 1.0).item() == 0


def test_softmax_kl_hand_value():
    got = softmax_kl(torch.tensor([[0., 0.]]), torch.tensor([[math.log(3), 0.]]), 1.0)
    assert got.item() == pytest.approx(0.75 * math.log(1.5) + 0.25 * math.log(0.5), rel=1e-5)
    s, t = [0.5, -1.0, 2.0], [1.5, 0.2, -0.3]
    assert softmax_kl(torch.tensor([s]), torch.tensor([t]), 4.0).item() == \
        pytest.approx(_skl(s, t, 4.0), rel=1e-5)


def test_sigmoid_confidence_counts_background():
    logits = torch.tensor([
        [-10., -10., -10.],  # sure it is empty: confident
        [10., -10., -10.],  # sure it is class 0: confident
        [0., -10., -10.],  # p = 0.5 for class 0: unsure
        [0., 0., 0.],  # unsure everywhere
    ])
    conf = sigmoid_confidence(logits)
    bg = (1 - _sig(-10))**3
    expected = [bg, max(_sig(10), (1 - _sig(10)) * (1 - _sig(-10))**2),
                max(0.5, 0.5 * (1 - _sig(-10))**2), 0.5]
    assert conf.tolist() == pytest.approx(expected, rel=1e-5)
    assert (conf >= 0.9).tolist() == [True, True, False, False]
    assert (conf >= 0.2).tolist() == [True, True, True, True]


def test_softmax_confidence():
    conf = softmax_confidence(torch.tensor([[5., 0., 0.], [0., 0., 0.]]))
    e = math.exp(5)
    assert conf.tolist() == pytest.approx([e / (e + 2), 1 / 3], rel=1e-5)


def _dense_case():
    torch.manual_seed(0)
    # 4 rows x 2 classes; at thresholds 0.9 / 0.6, rows 0-1 are confident in
    # both teacher views, row 2 in the strong view only, row 3 in neither.
    t_w = torch.tensor([[-9., -9.], [9., -9.], [0., -9.], [0.4, 0.3]])
    t_s = torch.tensor([[-9., -9.], [2., -9.], [-9., -9.], [0.1, 0.2]])
    s_w = torch.randn(4, 2)
    s_s = torch.randn(4, 2)
    return s_w, s_s, t_w, t_s


def test_dense_loss_equals_hand_computation():
    s_w, s_s, t_w, t_s = _dense_case()
    temp, tau_w, tau_s = 2.0, 0.9, 0.6

    def conf(row):
        p = [_sig(v) for v in row]
        return max(max(p), math.prod(1 - v for v in p))

    def kl(s, t):
        return sum(_bkl(a, b, temp) for a, b in zip(s, t))

    rows = range(4)
    m_w = [conf(t_w[i].tolist()) >= tau_w for i in rows]
    m_s = [conf(t_s[i].tolist()) >= tau_s for i in rows]
    assert m_w == [True, True, False, False] and m_s == [True, True, True, False]
    L = lambda x: x.tolist()  # noqa: E731
    within = (sum(m_w[i] * kl(L(s_w[i]), L(t_w[i])) for i in rows) / 4
              + sum(m_w[i] * kl(L(s_s[i]), L(t_s[i])) for i in rows) / 4)
    cross = (sum(m_s[i] * kl(L(s_s[i]), L(t_w[i])) for i in rows) / 4
             + sum(m_s[i] * kl(L(s_w[i]), L(t_s[i])) for i in rows) / 4)
    loss = CrossViewLoss('sigmoid', within_weight=2.0, cross_weight=0.5, temperature=temp,
                         tau_weak=tau_w, tau_strong=tau_s)
    out = loss((s_w, s_s), ((t_w, t_w), (t_s, t_s)))
    assert out['within'].item() == pytest.approx(2.0 * within, rel=1e-5)
    assert out['cross'].item() == pytest.approx(0.5 * cross, rel=1e-5)


def test_roi_loss_equals_hand_computation():
    # Different row sets per student view (each view samples its own RoIs).
    torch.manual_seed(1)
    s_w, s_s = torch.randn(2, 3), torch.randn(3, 3)
    tw_w, tw_s = torch.tensor([[4., 0., 0.], [0., 0., 0.]]), torch.randn(3, 3) * 3
    ts_w, ts_s = torch.randn(2, 3) * 3, torch.tensor([[0., 5., 0.], [0., 0., 1.], [9., 0., 0.]])
    temp, tau_w, tau_s = 4.0, 0.9, 0.2

    def conf(row):
        e = [math.exp(v) for v in row]
        return max(e) / sum(e)

    L = lambda x: x.tolist()  # noqa: E731
    within = (sum((conf(L(tw_w[i])) >= tau_w) * _skl(L(s_w[i]), L(tw_w[i]), temp)
                  for i in range(2)) / 2
              + sum((conf(L(tw_s[i])) >= tau_w) * _skl(L(s_s[i]), L(ts_s[i]), temp)
                    for i in range(3)) / 3)
    cross = (sum((conf(L(ts_s[i])) >= tau_s) * _skl(L(s_s[i]), L(tw_s[i]), temp)
                 for i in range(3)) / 3
             + sum((conf(L(ts_w[i])) >= tau_s) * _skl(L(s_w[i]), L(ts_w[i]), temp)
                   for i in range(2)) / 2)
    loss = CrossViewLoss('softmax', temperature=temp, tau_weak=tau_w, tau_strong=tau_s)
    out = loss((s_w, s_s), ((tw_w, tw_s), (ts_w, ts_s)))
    assert out['within'].item() == pytest.approx(2.0 * within, rel=1e-5)
    assert out['cross'].item() == pytest.approx(0.5 * cross, rel=1e-5)


def test_masks_select_rows():
    # Only row 1 is confident (weak view), so only its KL enters the within term.
    t = torch.tensor([[0., 0.], [-9., -9.]])
    s = torch.tensor([[3., -3.], [1., 1.]])
    within, _ = cross_view_terms((s, s), (t, t), (t, t), 'sigmoid', 1.0, 0.9, 0.2)
    row1 = binary_kl(s[1], t[1]).sum()
    assert within.item() == pytest.approx(2 * row1.item() / 2, rel=1e-5)


def test_valid_rows_are_left_out():
    s_w, s_s, t_w, t_s = _dense_case()
    valid = torch.tensor([1., 1., 0., 0.])
    full = cross_view_terms((s_w[:2], s_s[:2]), (t_w[:2], t_w[:2]), (t_s[:2], t_s[:2]))
    masked = cross_view_terms((s_w, s_s), (t_w, t_w), (t_s, t_s), valid=(valid, valid))
    assert masked[0].item() == pytest.approx(full[0].item(), rel=1e-5)
    assert masked[1].item() == pytest.approx(full[1].item(), rel=1e-5)


def test_gradient_reaches_the_student_only():
    s_w, s_s, t_w, t_s = _dense_case()
    s_w.requires_grad_(True)
    s_s.requires_grad_(True)
    t_w.requires_grad_(True)
    t_s.requires_grad_(True)
    out = CrossViewLoss(tau_weak=0.0, tau_strong=0.0)((s_w, s_s), ((t_w, t_w), (t_s, t_s)))
    (out['within'] + out['cross']).backward()
    assert s_w.grad.abs().sum() > 0 and s_s.grad.abs().sum() > 0
    assert t_w.grad is None and t_s.grad is None


def test_empty_rows_give_zero():
    e = torch.zeros(0, 3, requires_grad=True)
    out = CrossViewLoss('softmax')((e, e), ((e, e), (e, e)))
    assert out['within'].item() == 0 and out['cross'].item() == 0


@pytest.mark.parametrize('kwargs, match', [
    (dict(tau_weak=1.5), 'tau_weak must be in'),
    (dict(tau_strong=-0.1), r'tau_strong must be in \[0, 1\], got -0.1'),
    (dict(kind='logits'), 'kind must be one of'),
    (dict(temperature=0), 'temperature must be > 0'),
    (dict(within_weight=-1), 'within_weight must be >= 0'),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        CrossViewLoss(**kwargs)


def test_mismatched_shapes():
    a, b = torch.zeros(4, 3), torch.zeros(4, 2)
    with pytest.raises(ValueError, match='view 0: student logits'):
        CrossViewLoss()((a, a), ((b, a), (a, a)))


def test_dense_kd_loss_hand_value():
    # One level, N=1, A=1, C=2, 1x2 map: mean over the 2 locations of the
    # class-summed binary KL.
    s = torch.tensor([[[[0.5, -1.0]], [[2.0, 0.0]]]])
    t = torch.tensor([[[[1.0, -2.0]], [[0.0, 3.0]]]])
    expected = (_bkl(0.5, 1.0, 1) + _bkl(2.0, 0.0, 1) + _bkl(-1.0, -2.0, 1)
                + _bkl(0.0, 3.0, 1)) / 2
    loss = DenseKDLoss(num_classes=2, loss_weight=3.0)
    assert loss(s, t).item() == pytest.approx(3.0 * expected, rel=1e-5)
    assert loss(t, t).item() == pytest.approx(0.0, abs=1e-7)
