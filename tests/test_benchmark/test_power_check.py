"""The deliberately broken distillation of the benchmark's power check."""
import pytest
import torch

from mmdet.registry import MODELS
from mmkd_plugins.benchmark.power_check import ShuffledTeacherLoss, roll_batch


def test_roll_batch_is_a_derangement():
    t = torch.arange(3.).view(3, 1, 1, 1).expand(3, 2, 2, 2)
    rolled, = roll_batch([t])
    assert rolled[:, 0, 0, 0].tolist() == [2., 0., 1.]


def test_host_sees_the_other_images_teacher():
    s = (torch.zeros(2, 1, 2, 2), torch.zeros(2, 1, 1, 1))
    t = (torch.stack([torch.full((1, 2, 2), 1.), torch.full((1, 2, 2), 3.)]),
         torch.stack([torch.full((1, 1, 1), 2.), torch.full((1, 1, 1), 4.)]))
    loss = ShuffledTeacherLoss(host=dict(type='FeatureMSELoss'), loss_weight=2.0)
    plain = MODELS.build(dict(type='FeatureMSELoss'))
    # the mean over images does not see the order: weights do
    w = (torch.tensor([1., 0.]).view(2, 1, 1, 1),) * 2
    # image 0 is weighted; its teacher is now image 1's (3 and 4)
    expected = plain(s, (t[0].flip(0), t[1].flip(0)), weights=w)
    assert loss(s, t, weights=w).item() == pytest.approx(2.0 * expected.item())
    assert expected.item() != pytest.approx(plain(s, t, weights=w).item())


def test_passes_probed_arguments_to_the_host():
    loss = MODELS.build(dict(type='ShuffledTeacherLoss', in_channels=8, num_levels=2,
                             host=dict(type='FGDLoss', temperature=0.5, alpha_fg=1e-3,
                                       beta_bg=5e-4, gamma_mask=5e-4, lambda_rela=5e-6)))
    assert type(loss.host).__name__ == 'FGDLoss'
    assert sum(p.numel() for p in loss.host.parameters()) > 0  # its context blocks, 8 wide


def test_errors():
    with pytest.raises(TypeError, match='host must be a loss config'):
        ShuffledTeacherLoss(host='FGDLoss')
    with pytest.raises(ValueError, match='not a registered distillation loss'):
        ShuffledTeacherLoss(host=dict(type='FocalLoss'))
    loss = ShuffledTeacherLoss(host=dict(type='FeatureMSELoss'))
    with pytest.raises(ValueError, match='at least 2 images'):
        loss((torch.zeros(1, 1, 2, 2),), (torch.zeros(1, 1, 2, 2),))
