"""tools/benchmark_speed.py: per-variant config overrides (--set)."""
import importlib.util
import os.path as osp

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def load_tool():
    spec = importlib.util.spec_from_file_location(
        'benchmark_speed', osp.join(REPO, 'tools', 'benchmark_speed.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_set_overrides_one_variant():
    tool = load_tool()
    got = tool.parse_overrides(['uet.model.a.passes=4', 'uet.model.a.placement=neck',
                                'uet.model.a.size=(64, 64)'], ['fgd', 'uet'])
    assert got == {'fgd': {}, 'uet': {'model.a.passes': 4, 'model.a.placement': 'neck',
                                      'model.a.size': (64, 64)}}
    for bad in ('x.model.a=1', 'uet=1', 'uet.model.a'):
        with pytest.raises(ValueError, match='--set needs NAME.KEY=VALUE'):
            tool.parse_overrides([bad], ['uet'])


def test_set_reaches_the_built_model():
    tool = load_tool()
    import mmkd_plugins  # noqa: F401
    path = osp.join(REPO, 'configs', 'uet',
                    'uet-fgd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py')
    key = 'model.distill_losses.loss_fgd.mc_dropout'
    model = tool.build_model(path, 'cpu', {f'{key}.passes': 3, f'{key}.scale': 0.5})
    mc = model.specs['loss_fgd']['mc_dropout']
    assert (mc['passes'], mc['scale']) == (3, 0.5)
