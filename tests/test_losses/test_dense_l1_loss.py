"""DenseL1Loss (TA-DFKD's student loss) on hand-computed values."""
import pytest
import torch

from mmkd_plugins.losses import DenseL1Loss


def test_mean_absolute_difference_per_level_summed_by_hand():
    student = (torch.tensor([[[[1., 2.], [3., 4.]]]]), torch.tensor([[[[-1.]]]]))
    teacher = (torch.tensor([[[[0., 2.], [5., 4.]]]]), torch.tensor([[[[2.]]]]))
    # level 0: |1| |0| |2| |0| -> 0.75; level 1: |3| -> 3; times loss_weight 2
    assert DenseL1Loss(loss_weight=2.0)(student, teacher).item() == pytest.approx(7.5)
    # weights multiply each element's term: weight 0 on the level-0 element
    # that differs by 2 leaves 1 / 4
    w = (torch.tensor([[[[1., 1.], [0., 1.]]]]), torch.ones(1, 1, 1, 1))
    assert DenseL1Loss()(student, teacher, weights=w).item() == pytest.approx(0.25 + 3)
