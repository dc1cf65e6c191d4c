"""Every UET config is its host twin with the loss spec changed, nothing
else, in a variant of configs/_base_/distill/uet.py."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from test_configs import settings

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
UET = sorted(glob.glob(osp.join(REPO, 'configs', 'uet', 'uet-fgd_*.py')))
BASE = Config.fromfile(osp.join(REPO, 'configs', '_base_', 'distill', 'uet.py'))
PAIR = 'retinanet-r18-w16_retinanet-r50-w32_glyphs.py'
# The glyph benchmark's rows: config -> (variant, twin config, spec name).
VARIANTS = {
    f'uet-{v}-fgd_{PAIR}': (v, f'fgd/fgd_{PAIR}', 'loss_fgd') for v in ('add', 'weight', 'head')}
VARIANTS[f'uet-add-pkd_{PAIR}'] = ('add', f'baselines/pkd_{PAIR}', 'loss_pkd')


def test_one_uet_config_per_fgd_config():
    fgd = sorted(osp.basename(p) for p in glob.glob(osp.join(REPO, 'configs', 'fgd', '*.py')))
    assert [osp.basename(p)[len('uet-'):] for p in UET] == fgd


def test_the_default_is_one_switch():
    assert BASE.kd_uet_default in BASE.kd_uet_variants
    default = BASE.kd_uet_variants[BASE.kd_uet_default]
    assert BASE.kd_uet_mc_dropout == default.mc_dropout and BASE.kd_uet == default.loss
    # Every variant samples through non-linear computation, 8 passes.
    for variant in BASE.kd_uet_variants.values():
        assert variant.mc_dropout.placement in ('stage', 'head')
        assert variant.mc_dropout.passes == 8


def check_one_diff(path, twin_path, name, variant):
    uet, twin = settings(path), settings(twin_path)
    uet_spec = uet['model']['distill_losses'].pop(name)
    twin_spec = twin['model']['distill_losses'].pop(name)
    assert uet == twin
    loss, mc = uet_spec.pop('loss'), uet_spec.pop('mc_dropout')
    assert uet_spec == {k: v for k, v in twin_spec.items() if k != 'loss'}
    assert loss.pop('type') == 'UncertaintyAwareLoss' and loss.pop('host') == twin_spec['loss']
    assert mc == variant.mc_dropout.to_dict() and loss == variant.loss.to_dict()


@pytest.mark.parametrize('path', UET, ids=osp.basename)
def test_uet_config_is_its_fgd_twin_in_the_default_variant(path):
    check_one_diff(path, path.replace('/uet/uet-fgd_', '/fgd/fgd_'), 'loss_fgd',
                   BASE.kd_uet_variants[BASE.kd_uet_default])


@pytest.mark.parametrize('config', sorted(VARIANTS))
def test_benchmark_variant_is_its_twin_in_that_variant(config):
    variant, twin, name = VARIANTS[config]
    check_one_diff(osp.join(REPO, 'configs', 'uet', config), osp.join(REPO, 'configs', twin),
                   name, BASE.kd_uet_variants[variant])
