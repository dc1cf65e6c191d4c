"""GroupReweighted: the inverse-frequency objective by hand, its logs, and
its need for the group counts."""
import pytest
import torch
from conftest import distiller_cfg, fake_group_steps, group_batch

from mmdet.registry import MODELS

GROUPS = ['plain', 'gradient', 'texture', 'photo']
COUNTS = {'gradient': 10, 'photo': 1, 'plain': 4, 'texture': 5}
LOSSES = {'plain': (1.0, 0.5), 'photo': (2.0, 1.0), 'texture': (0.2, 0.1), 'gradient': (9.0, 9.0)}


def reweighted_cfg(**objective):
    return distiller_cfg(objective=dict(type='GroupReweighted', groups=GROUPS, **objective))


@pytest.fixture(scope='module')
def model():
    torch.manual_seed(0)
    return MODELS.build(reweighted_cfg(group_counts=COUNTS))


def test_images_weighted_by_inverse_group_size(model, monkeypatch):
    model.train()
    weight = fake_group_steps(monkeypatch, LOSSES)
    out = model.loss(**group_batch(model, ['plain', 'photo', 'plain', 'texture', 'photo']))
    # c_g / n_g: photo 2 / 1, plain 2 / 4, texture 1 / 5; l_g = det + dist.
    w = {'photo': 2.0, 'plain': 0.5, 'texture': 0.2}
    loss = {'photo': 3.0, 'plain': 1.5, 'texture': 0.3}
    objective = sum(w[g] * loss[g] for g in w) / sum(w.values())  # 6.81 / 2.7
    assert objective == pytest.approx(6.81 / 2.7)
    assert out['loss_group_reweighted'].item() == pytest.approx(objective, rel=1e-6)
    for g in w:
        assert out[f'gw_{g}'].item() == pytest.approx(w[g] / 2.7, rel=1e-6)
        assert out[f'gl_{g}'].item() == pytest.approx(loss[g])
        assert out[f'gdet_{g}'].item() == pytest.approx(LOSSES[g][0])
        assert out[f'gdist_{g}'].item() == pytest.approx(LOSSES[g][1])
    assert not any(k.endswith('_gradient') for k in out)  # absent: not logged
    total, log_vars = model.parse_losses(out)
    assert [k for k in log_vars if 'loss' in k] == ['loss', 'loss_group_reweighted']
    assert log_vars['part_cls'] + log_vars['part_fgd'] == pytest.approx(total.item())
    total.backward()
    assert weight.grad.item() == pytest.approx(objective, rel=1e-6)
    assert not hasattr(model, 'group_weights')  # no state


def test_equal_group_sizes_give_the_image_mean(model, monkeypatch):
    monkeypatch.setattr(model.objective.counts, 'values', (7, 7, 7, 7))
    fake_group_steps(monkeypatch, LOSSES)
    out = model.loss(**group_batch(model, ['plain', 'photo', 'plain', 'texture']))
    # (2 * 1.5 + 1 * 3.0 + 1 * 0.3) / 4 images
    assert out['loss_group_reweighted'].item() == pytest.approx(6.3 / 4)


def test_needs_the_group_counts(monkeypatch):
    model = MODELS.build(reweighted_cfg())
    fake_group_steps(monkeypatch, LOSSES)
    data = group_batch(model, ['plain', 'photo'])
    with pytest.raises(RuntimeError, match=r"GroupReweighted needs each group's number of "
                                           r"training images n_g: add "
                                           r"dict\(type='GroupCountsHook'\) to custom_hooks"):
        model.loss(**data)
    model.objective.set_group_counts(dict(COUNTS, photo=4))
    out = model.loss(**data)
    assert out['gw_plain'].item() == pytest.approx(0.5)  # 1/4 each


@pytest.mark.parametrize('kwargs,match', [
    (dict(groups=None), 'groups is required'),
    (dict(group_counts=dict(plain=1)), r"missing \['gradient', 'photo', 'texture'\]"),
    (dict(group_key=3), 'group_key must be a non-empty string, got 3'),
])
def test_build_errors(kwargs, match):
    cfg = reweighted_cfg()
    cfg['objective'].update(kwargs)
    with pytest.raises(ValueError, match=match):
        MODELS.build(cfg)
