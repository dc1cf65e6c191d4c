"""tools/benchmark_speed.py: per-variant config overrides (--set)."""
import os.path as osp

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def test_set_overrides_one_variant(load_tool):
    tool = load_tool('benchmark_speed')
    got = tool.parse_overrides(['uet.model.a.passes=4', 'uet.model.a.placement=head',
                                'uet.model.a.size=(64, 64)'], ['fgd', 'uet'])
    assert got == {'fgd': {}, 'uet': {'model.a.passes': 4, 'model.a.placement': 'head',
                                      'model.a.size': (64, 64)}}
    for bad in ('x.model.a=1', 'uet=1', 'uet.model.a'):
        with pytest.raises(ValueError, match='--set needs NAME.KEY=VALUE'):
            tool.parse_overrides([bad], ['uet'])


def test_set_reaches_the_built_model(load_tool):
    tool = load_tool('benchmark_speed')
    import mmkd_plugins  # noqa: F401
    path = osp.join(REPO, 'configs', 'uet',
                    'uet-fgd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py')
    key = 'model.distill_losses.loss_fgd.mc_dropout'
    model = tool.build_model(path, 'cpu', {f'{key}.passes': 3, f'{key}.scale': 0.5})
    mc = model.specs['loss_fgd']['mc_dropout']
    assert (mc['passes'], mc['scale']) == (3, 0.5)



def test_torch_focal_loss_matches_the_formula(load_tool):
    """The stand-in for mmcv's CUDA focal loss (used on a GPU machine whose
    mmcv has no CUDA ops) gives -a_t (1 - p_t)^g log p_t per class, label C
    being background (every class negative)."""
    import torch
    tool = load_tool('benchmark_speed')
    pred = torch.tensor([[2.0, -1.0, 0.5], [-0.3, 0.0, 1.5]])
    target = torch.tensor([1, 3])  # image 2: background
    got = tool.torch_sigmoid_focal_loss(pred, target, 2.0, 0.25, None, 'none')
    want = torch.empty(2, 3)
    for i in range(2):
        for c in range(3):
            p = torch.sigmoid(pred[i, c])
            positive = target[i].item() == c
            p_t = p if positive else 1 - p
            a_t = 0.25 if positive else 0.75
            want[i, c] = -a_t * (1 - p_t) ** 2 * torch.log(p_t)
    torch.testing.assert_close(got, want)
    with pytest.raises(NotImplementedError, match='weight=None'):
        tool.torch_sigmoid_focal_loss(pred, target, 2.0, 0.25, torch.ones(3), 'none')
    assert tool.focal_loss_fallback('cpu') == ''
