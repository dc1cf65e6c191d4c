"""The argument convention every feature loss honours, checked once for all
(FGD, which also needs ground truth, checks it in its own file)."""
import pytest
import torch

from mmkd_plugins.losses import CWDLoss, FeatureMSELoss, PKDLoss

LOSSES = [FeatureMSELoss(loss_weight=0.5), PKDLoss(), CWDLoss(temperature=3.0, loss_weight=0.7)]


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
