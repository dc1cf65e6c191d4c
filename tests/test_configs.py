"""Every shipped config parses; every distiller config builds its model."""
import glob
import importlib
import os.path as osp

import pytest
from mmengine.config import Config

from mmdet.registry import MODELS
from mmkd_plugins.distillers import is_distiller_type

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
CONFIGS = sorted(p for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True)
                 if '_base_' not in p)


def test_configs_exist():
    names = {osp.relpath(p, REPO) for p in CONFIGS}
    for method in ('retinanet', 'faster-rcnn', 'fcos', 'gfl'):
        assert any(n.startswith('configs/fgd/') and method in n and n.endswith('coco.py')
                   for n in names), method


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, REPO))
def test_config_builds(path):
    cfg = Config.fromfile(path)
    if is_distiller_type(cfg.model.type):
        # No download here: the teacher stays random, everything else is checked.
        cfg.model.teacher_ckpt = None
        # mmkd_plugins first; anything else from inside the package (the
        # benchmark's power check registers its loss on import)
        imports = cfg.custom_imports['imports']
        assert imports[0] == 'mmkd_plugins', imports
        assert all(m.startswith('mmkd_plugins.') for m in imports[1:]), imports
        for module in imports:
            importlib.import_module(module)
    model = MODELS.build(cfg.model)
    assert sum(p.numel() for p in model.parameters()) > 0


def _normalised(cfg_dict):
    """A config dict with the ``{{fileDirname}}/..`` paths resolved, so that
    configs in different folders compare equal."""
    if isinstance(cfg_dict, dict):
        return {k: _normalised(v) for k, v in cfg_dict.items()}
    if isinstance(cfg_dict, (list, tuple)):
        return type(cfg_dict)(_normalised(v) for v in cfg_dict)
    if isinstance(cfg_dict, str) and cfg_dict.endswith('.py') and osp.isabs(cfg_dict):
        return osp.normpath(cfg_dict)
    return cfg_dict


def settings(path):
    """A config's settings: its dict without the fragments' own variables
    (``kd_*`` from configs/_base_/distill/, ``cv_*`` from the two-view base),
    which are definitions; the settings show where the config places them."""
    cfg = Config.fromfile(path).to_dict()
    return {k: v for k, v in cfg.items() if not k.startswith(('kd_', 'cv_'))}


def _load(path):
    return _normalised(settings(osp.join(REPO, path)))


def _differing(a, b):
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


GROUP_DRO = 'configs/group_dro/'
DATA_KEYS = ['data_root', 'meta_keys', 'test_dataloader', 'test_evaluator', 'test_pipeline',
             'train_dataloader', 'train_pipeline', 'val_dataloader', 'val_evaluator']


def test_group_dro_configs_are_one_diff_apart():
    fgd = _load('configs/fgd/fgd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py')
    student = _load(GROUP_DRO + 'retinanet_r18-w16_1500i_digits-imbalanced.py')
    kd = _load(GROUP_DRO + 'kd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits-imbalanced.py')
    dro = _load(GROUP_DRO +
                'group-dro-kd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits-imbalanced.py')
    # KD = the FGD demo (model, losses, hooks, schedule) on the imbalanced data.
    assert _differing(fgd, kd) == DATA_KEYS
    assert kd['train_dataloader']['dataset']['data_root'] == 'data/digits_imbalanced/'
    # The student alone differs from KD by the model (and KD's teacher hook).
    assert _differing(student, kd) == ['custom_hooks', 'model']
    # Group DRO differs from KD by three model keys.
    assert _differing(kd, dro) == ['model']
    changed = {k: v for k, v in dro['model'].items() if kd['model'].get(k) != v}
    assert set(changed) == {'type', 'groups', 'step_size'}
    assert changed['type'] == 'GroupDRODistiller'
    # Every group of the data is one of the distiller's groups.
    assert sorted(changed['groups']) == ['gradient', 'photo', 'plain', 'texture']


def test_group_balanced_config_changes_only_the_sampler():
    dro = _load(GROUP_DRO +
                'group-dro-kd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits-imbalanced.py')
    balanced = _load(GROUP_DRO + 'group-dro-kd-balanced_retinanet-r18-w16_retinanet-r18-w32_'
                     '1500i_digits-imbalanced.py')
    assert _differing(dro, balanced) == ['train_dataloader']
    assert _differing(dro['train_dataloader'], balanced['train_dataloader']) == ['sampler']
    assert balanced['train_dataloader']['sampler'] == dict(type='GroupBalancedSampler', power=1.0)


def test_cross_view_feature_losses_are_their_single_view_twins():
    """configs/cross_view/ place the same fragments (configs/_base_/distill/)
    as the FGD and UET demos: their feature losses must stay equal."""
    cv = 'configs/cross_view/'
    pair = 'retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py'
    fgd = _load('configs/fgd/fgd_' + pair)['model']['distill_losses']
    uet = _load('configs/uet/uet-fgd_' + pair)['model']['distill_losses']
    assert _load(cv + 'crld-fgd_' + pair)['model']['distill_losses'] == fgd
    assert _load(cv + 'crld-uet-fgd_' + pair)['model']['distill_losses'] == uet
    # The single-view twin of crld-fgd: logit KD plus the same FGD loss.
    kd = _load(cv + 'kd_' + pair)['model']['distill_losses']
    assert _load(cv + 'kd-fgd_' + pair)['model']['distill_losses'] == {**kd, **fgd}


@pytest.mark.parametrize('path', CONFIGS, ids=lambda p: osp.relpath(p, REPO))
def test_fragment_variables_name_no_plugin_type(path):
    """The fragments' top-level variables stay in the student config that
    tools/export_student.py writes; an mmkd_plugins type among them would make
    the exported student need mmkd_plugins (configs place the types)."""
    from mmkd_plugins.export import _plugin_types
    cfg = Config.fromfile(path).to_dict()
    fragments = {k: v for k, v in cfg.items() if k.startswith(('kd_', 'cv_'))}
    assert not _plugin_types(fragments)
    if 'digits' in path and is_distiller_type(cfg['model']['type']):
        assert fragments  # the demo distillation configs do use fragments
