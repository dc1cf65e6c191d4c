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


GLYPHS = 'retinanet-r18-w16_retinanet-r50-w32_glyphs'
GLYPH_DATA_KEYS = ['data_root', 'test_dataloader', 'test_evaluator', 'test_pipeline',
                   'train_dataloader', 'train_pipeline', 'val_dataloader', 'val_evaluator']


def _group(name):
    return _load(f'{GROUP_DRO}{name}_{GLYPHS}-imbalanced.py')


def test_group_suite_plain_rows_are_the_benchmark_rows_on_other_data():
    """kd, logit-kd and the student of the group suite are the glyph
    benchmark's fgd, kd and student rows: only the data differ."""
    pairs = [(_load(f'configs/fgd/fgd_{GLYPHS}.py'), _group('kd')),
             (_load(f'configs/baselines/kd_{GLYPHS}.py'), _group('logit-kd'))]
    for benchmark, group in pairs:
        assert _differing(benchmark, group) == GLYPH_DATA_KEYS
    student = _load(GROUP_DRO + 'retinanet_r18-w16_glyphs-imbalanced.py')
    assert _differing(_load('configs/benchmark/retinanet_r18-w16_glyphs.py'), student) == \
        ['custom_imports'] + GLYPH_DATA_KEYS
    data = student['train_dataloader']['dataset']
    assert data['type'] == 'GroupCocoDataset' and data['data_root'] == 'data/glyphs_imbalanced/'
    assert student['val_evaluator']['type'] == 'GroupCocoMetric'
    assert 'group' in data['pipeline'][-1]['meta_keys']
    for key in GLYPH_DATA_KEYS:
        assert _group('kd')[key] == student[key]


def test_group_suite_rows_are_one_change_from_their_twins():
    from mmkd_plugins.synthetic.glyphs import STYLES
    kd, dro = _group('kd'), _group('group-dro-kd')
    balanced = {'type': 'GroupBalancedSampler', 'power': 1.0}

    def only_model_changes(a, b, *others):
        assert _differing(a, b) == sorted(['model', *others])
        return {k: v for k, v in b['model'].items() if a['model'].get(k) != v}

    # The objective is the one change of reweighting and group DRO.
    for name, objective in (('kd-reweighted', 'GroupReweighted'), ('group-dro-kd', 'GroupDRO')):
        changed = only_model_changes(kd, _group(name), 'custom_hooks')
        assert list(changed) == ['objective'] and changed['objective']['type'] == objective
        assert sorted(changed['objective']['groups']) == sorted(STYLES)
        assert _group(name)['custom_hooks'] == [dict(type='GroupCountsHook')]
    assert dro['model']['objective'] == dict(
        type='GroupDRO', groups=['plain', 'gradient', 'texture', 'photo'], step_size=0.01,
        signal='detection', adjustment=0.0)
    # Balanced batches: the sampler alone.
    for a, b in ((kd, _group('kd-balanced')), (dro, _group('group-dro-kd-balanced'))):
        assert _differing(a, b) == ['train_dataloader']
        assert _differing(a['train_dataloader'], b['train_dataloader']) == ['sampler']
        assert b['train_dataloader']['sampler'] == balanced
    # The same objective over logit KD.
    changed = only_model_changes(_group('logit-kd'), _group('group-dro-logit-kd'),
                                 'custom_hooks')
    assert changed == {'objective': dro['model']['objective']}
    # The power check flips the signal's sign, nothing else.
    broken = _group('broken-group-dro-kd-inverted')
    changed = only_model_changes(dro, broken, 'custom_imports')
    assert changed['objective'] == dict(dro['model']['objective'], type='InvertedGroupDRO')


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
