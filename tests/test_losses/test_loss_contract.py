"""The argument convention every distillation loss honours, checked once for
all: gradients, levels, and the one meaning of ``weights`` (losses/base.py).
(FGD, which also needs ground truth, checks its levels in its own file.)"""
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmkd_plugins.benchmark.power_check import ShuffledTeacherLoss
from mmkd_plugins.losses import (BaseDistillLoss, CWDLoss, DenseKDLoss, DenseL1Loss,
                                 FeatureMSELoss,
                                 FGDLoss, PKDLoss, UncertaintyAwareLoss)

LOSSES = [FeatureMSELoss(loss_weight=0.5), PKDLoss(), CWDLoss(temperature=3.0, loss_weight=0.7),
          DenseL1Loss(loss_weight=0.5)]


def levels(seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(2, 3, 4, 4, generator=g), torch.randn(2, 3, 2, 2, generator=g)


@pytest.mark.parametrize('loss', LOSSES, ids=lambda m: type(m).__name__)
def test_gradient_reaches_student_not_teacher(loss):
    s, t = levels(0)[0].requires_grad_(True), levels(1)[0].requires_grad_(True)
    loss(s, t).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None


@pytest.mark.parametrize('loss', LOSSES, ids=lambda m: type(m).__name__)
def test_tuple_of_levels_is_the_sum_of_levels(loss):
    s, t = levels(0), levels(1)
    assert torch.allclose(loss(s, t), loss(s[0], t[0]) + loss(s[1], t[1]))


# -- weights: one meaning for every loss ---------------------------------------
def _samples():
    out = []
    for boxes in ([[0., 0., 16., 16.]], [[8., 4., 30., 20.], [2., 2., 6., 6.]]):
        ds = DetDataSample(metainfo=dict(batch_input_shape=(32, 32), img_shape=(32, 32)))
        ds.gt_instances = InstanceData(bboxes=torch.tensor(boxes),
                                       labels=torch.zeros(len(boxes), dtype=torch.long))
        out.append(ds)
    return out


def _uet():
    return UncertaintyAwareLoss(host=dict(type='FGDLoss', in_channels=3, num_levels=2,
                                          alpha_fg=1.0, beta_bg=1.0))


def _mc_var(teacher):
    g = torch.Generator().manual_seed(7)
    return tuple(0.1 * torch.rand(*t.shape, generator=g) for t in teacher)


# Every registered distillation loss, with what its forward needs besides
# (student, teacher, weights).
WEIGHTED = {
    'FeatureMSELoss': (lambda: FeatureMSELoss(loss_weight=0.5), lambda t: {}),
    'PKDLoss': (PKDLoss, lambda t: {}),
    'CWDLoss': (lambda: CWDLoss(temperature=3.0), lambda t: {}),
    'DenseKDLoss': (lambda: DenseKDLoss(num_classes=3), lambda t: {}),
    'DenseL1Loss': (lambda: DenseL1Loss(loss_weight=0.5), lambda t: {}),
    'FGDLoss': (lambda: FGDLoss(in_channels=3, num_levels=2, alpha_fg=1.0, beta_bg=1.0),
                lambda t: dict(data_samples=_samples())),
    'UncertaintyAwareLoss': (_uet, lambda t: dict(data_samples=_samples(),
                                                 teacher_var=_mc_var(t))),
    # the benchmark's power check: its host's contract, on the batch rolled by one
    'ShuffledTeacherLoss': (lambda: ShuffledTeacherLoss(host=dict(type='FeatureMSELoss')),
                            lambda t: {}),
}


def test_every_registered_loss_is_in_the_weights_contract():
    registered = {name for name, cls in MODELS.module_dict.items()
                  if isinstance(cls, type) and issubclass(cls, BaseDistillLoss)}
    assert registered == set(WEIGHTED)


def _weights(seed, shapes):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.rand(*s, generator=g) * 2 for s in shapes)


@pytest.mark.parametrize('name', sorted(WEIGHTED))
def test_weights_multiply_each_term(name):
    """None equals ones of any broadcastable shape bit for bit, and the loss
    is linear in the weights:
    L(a w1 + b w2) - L(0) = a (L(w1) - L(0)) + b (L(w2) - L(0)); nothing is
    renormalised, so a constant k scales the weighted part by k."""
    make, extra = WEIGHTED[name]
    torch.manual_seed(0)
    loss = make()
    s, t = levels(0), levels(1)
    kw = extra(t)

    def value(weights):
        return loss(s, t, weights=weights, **kw).double()

    for ones in (tuple(map(torch.ones_like, s)),
                 tuple(torch.ones(x.shape[0], 1, *x.shape[2:]) for x in s),
                 tuple(torch.ones(*x.shape[:2], 1, 1) for x in s)):
        assert torch.equal(value(None), value(ones))
    zero = value(tuple(torch.zeros_like(w) for w in ones))
    for shapes in ([(2, 1, 4, 4), (2, 1, 2, 2)], [(2, 3, 1, 1), (2, 3, 1, 1)],
                   [(2, 3, 4, 4), (2, 3, 2, 2)]):
        w1, w2 = _weights(1, shapes), _weights(2, shapes)
        mixed = tuple(0.3 * a + 2.0 * b for a, b in zip(w1, w2))
        expected = zero + 0.3 * (value(w1) - zero) + 2.0 * (value(w2) - zero)
        torch.testing.assert_close(value(mixed), expected, rtol=1e-4, atol=1e-6)
        twice = tuple(2 * w for w in w1)
        torch.testing.assert_close(value(twice) - zero, 2 * (value(w1) - zero),
                                   rtol=1e-4, atol=1e-6)
    assert not torch.allclose(value(_weights(1, [(2, 1, 4, 4), (2, 1, 2, 2)])), value(None))
