"""The benchmark's suites and presets, read as configs (nothing trains)."""
import argparse
import os.path as osp

import pytest
from mmengine.config import Config, DictAction

from mmkd_plugins.benchmark.runs import Harness
from mmkd_plugins.benchmark.suites import (INHERIT, PRESETS, STUDENT, SUITES, TEACHER,
                                           preset_data_args, preset_options)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _with_options(config, options):
    cfg = Config.fromfile(osp.join(ROOT, config))
    parser = argparse.ArgumentParser()  # as tools/train.py reads --cfg-options
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    cfg.merge_from_dict(parser.parse_args(['--cfg-options', *options] if options else [])
                        .cfg_options)
    return cfg


@pytest.mark.parametrize('suite', sorted(SUITES))
def test_rows_exist_and_twins_are_rows(suite):
    s = SUITES[suite]
    assert s.rows[list(s.rows)[0]].twin is None  # the table starts from a reference point
    for name, row in s.rows.items():
        assert osp.isfile(osp.join(ROOT, row.config)), row.config
        assert row.twin is None or row.twin in s.rows, name
        cfg = _with_options(row.config, row.options)
        assert (cfg.model.type != 'RetinaNet') == row.distills, name
    assert set(s.default_rows) <= set(s.rows)
    assert s.reference is None or s.reference in s.rows
    assert set(s.presets) <= set(PRESETS)
    if s.teacher_suite is not None:  # it distils from that suite's teacher run as it is
        other = SUITES[s.teacher_suite]
        assert (other.teacher, other.pretrain) == (s.teacher, s.pretrain)
    harness = Harness(s, PRESETS[s.presets[0]], 'unused', log=lambda m: None)
    for name, row in s.rows.items():  # a shared row is the same run of the teacher suite
        if row.shared:
            assert harness.row_prefix(name) == f'{harness.teacher_prefix}/{row.shared}'
    if suite == 'data-free':  # its table starts from its upper bound, a shared row
        return
    # every other suite starts from the student alone and has a power check
    assert list(s.rows)[0] == 'student'
    assert any(n.startswith('broken-') for n in s.rows)
    if suite == 'glyphs':  # the methods suite runs it by default; the group suite by --rows
        assert any(n.startswith('broken-') for n in s.default_rows)


def test_uet_rows_are_read_against_the_host_they_wrap():
    rows = SUITES['glyphs'].rows
    uet = [n for n in rows if n.startswith('uet')]
    assert {'uet-add', 'uet-add-pkd'} <= set(SUITES['glyphs'].default_rows)
    assert len(uet) >= 2
    for name in uet:
        row, twin = rows[name], rows[rows[name].twin]
        (spec, ), (host, ) = (_with_options(c, ()).model.distill_losses.values()
                              for c in (row.config, twin.config))
        assert spec.loss.type == 'UncertaintyAwareLoss' and 'mc_dropout' in spec, name
        assert spec.loss.host == host.loss, name


def _resolved(path):
    return osp.normpath(path) if isinstance(path, str) else path


def test_data_free_rows_start_alike_and_differ_only_in_what_they_test():
    s = SUITES['data-free']
    # 3 seeds of ta-dfkd and its twin are the 6 runs the CPU budget allows;
    # the upper bound is the glyph suite's inherit runs, not trained again
    assert s.default_rows == ('real-data-student', 'no-filter', 'ta-dfkd')
    assert s.rows['ta-dfkd'].twin == 'no-filter'
    assert {s.rows[r].twin for r in s.default_rows} <= set(s.default_rows) | {None}
    assert s.rows['real-data-student'].config == INHERIT  # the upper bound
    assert s.rows['real-data-student'].shared == 'inherit'
    inherit = SUITES['glyphs'].rows['inherit']  # same config and options: same runs
    assert (inherit.config, inherit.options, inherit.distills) == (
        INHERIT, s.rows['real-data-student'].options, s.rows['real-data-student'].distills)
    assert s.teacher_suite == 'glyphs' and s.reference == 'real-data-student'
    assert s.presets == ('cpu', )
    cfgs = {name: _with_options(row.config, row.options) for name, row in s.rows.items()}
    real = cfgs['real-data-student']
    for name, cfg in cfgs.items():
        model = cfg.model
        assert _resolved(model.student) == _resolved(real.model.student), name
        assert _resolved(model.teacher) == _resolved(real.model.teacher), name
        assert model.teacher_ckpt == real.model.teacher_ckpt
        assert model.init_student_from_teacher == ('neck.fpn_convs', 'bbox_head'), name
        assert cfg.val_dataloader == real.val_dataloader, name  # validated on the glyphs
        if name != 'real-data-student':  # no glyph image is read for training
            assert cfg.model.type == 'DataFreeDistiller'
            dataset = cfg.train_dataloader.dataset
            assert dataset.type == 'DataFreeDataset' and 'data_root' not in dataset
            assert dataset.metainfo.classes == real.train_dataloader.dataset.metainfo.classes

    def diff(a, b, prefix=''):
        if isinstance(a, dict) and isinstance(b, dict):
            return sorted(d for k in set(a) | set(b)
                          for d in diff(a.get(k), b.get(k), f'{prefix}{k}.'))
        return [] if a == b else [prefix.rstrip('.')]

    ta = cfgs['ta-dfkd'].to_dict()
    assert diff(ta, cfgs['no-filter'].to_dict()) == ['model.data_free.lenient_filter']
    assert cfgs['no-filter'].model.data_free.lenient_filter is None
    assert diff(ta, cfgs['noise-kd'].to_dict()) == [
        'custom_hooks', 'model.data_free.generator.init_size', 'model.data_free.generator.ngf',
        'model.data_free.generator.nz', 'model.data_free.generator.std',
        'model.data_free.generator.type', 'model.data_free.lenient_filter']
    assert diff(ta, cfgs['ta-dfkd-kl'].to_dict()) == [
        'model.distill_losses.loss_cls.loss.loss_weight',
        'model.distill_losses.loss_cls.loss.temperature', 'model.distill_losses.loss_cls.loss.type']


def test_power_check_row_swaps_only_the_loss():
    row = SUITES['glyphs'].rows['broken-fgd-shuffled']
    twin = SUITES['glyphs'].rows[row.twin]
    broken, fgd = _with_options(row.config, row.options), _with_options(twin.config, ())
    loss, ref = broken.model.distill_losses.loss_fgd.loss, fgd.model.distill_losses.loss_fgd.loss
    assert loss.type == 'ShuffledTeacherLoss'
    assert loss.host == ref
    assert 'mmkd_plugins.benchmark.power_check' in broken.custom_imports.imports
    broken.model.distill_losses.loss_fgd = fgd.model.distill_losses.loss_fgd
    assert broken.model == fgd.model


def test_cuda_preset_moves_a_distiller_row_onto_the_larger_data():
    suite, preset = SUITES['glyphs'], PRESETS['cuda']
    args, root = preset_data_args(suite, preset)
    assert root == 'data/glyphs-x2/'
    assert args[args.index('--out') + 1] == 'data/glyphs-x2'
    assert args[-5:] == ['--size', '256', '--scale-range', '24', '128']
    row = suite.rows['fgd']
    cfg = _with_options(row.config, preset_options(suite, preset, row))
    assert cfg.model.student.endswith('retinanet_r18-w16_glyphs-x2.py')
    assert cfg.model.teacher.endswith('retinanet_r50-w32_glyphs-x2.py')
    assert cfg.train_dataloader.dataset.data_root == root
    assert tuple(cfg.train_dataloader.dataset.pipeline[2].scale) == (256, 256)
    assert tuple(cfg.val_dataloader.dataset.pipeline[1].scale) == (256, 256)
    assert cfg.val_evaluator.ann_file == root + 'annotations/val.json'
    # the detector rows are swapped whole for their x2 configs
    for path in (STUDENT, TEACHER):
        x2 = Config.fromfile(osp.join(ROOT, preset.config(path)))
        assert x2.train_dataloader.dataset.data_root == root
        assert x2.model.bbox_head.anchor_generator.octave_base_scale == 3
    assert preset.config('configs/fgd/x.py') == 'configs/fgd/x.py'
    assert PRESETS['cpu'].config(STUDENT) == STUDENT
    assert preset_options(suite, PRESETS['cpu'], row) == []


def test_group_suite_rows_and_teacher():
    suite = SUITES['group']
    assert suite.groups == ('plain', 'gradient', 'texture', 'photo')
    assert suite.teacher_suite == 'glyphs' and suite.teacher == SUITES['glyphs'].teacher
    assert suite.doc_markers == ('<!-- group:start -->', '<!-- group:end -->')
    # By default the four baselines alone, read against plain KD:
    # 12 runs over 3 seeds, what the CPU machines afford.
    assert suite.default_rows == ('kd', 'kd-balanced', 'kd-reweighted', 'group-dro-kd')
    assert suite.reference == 'kd' and suite.rows['kd'].config.endswith(
        'kd_retinanet-r18-w16_retinanet-r50-w32_glyphs-imbalanced.py')
    for name in ('kd-balanced', 'kd-reweighted', 'group-dro-kd'):
        assert suite.rows[name].twin == 'kd'
    # Options and schedules that make the variants.
    assert suite.rows['group-dro-kd-eta0.1'].options == ('model.objective.step_size=0.1', )
    cfg = _with_options(suite.rows['group-dro-kd-std'].config,
                        suite.rows['group-dro-kd-std'].cfg_options)
    assert cfg.model.objective.signal == 'standardised'
    early = suite.rows['group-dro-kd-early']
    cfg = _with_options(early.config, early.cfg_options)
    assert cfg.train_cfg.max_iters == 600 and cfg.param_scheduler[1].T_max == 500
    # The power check and its twin differ in the objective's type alone.
    broken = suite.rows['broken-group-dro-kd-inverted']
    twin = suite.rows[broken.twin]
    b, t = _with_options(broken.config, broken.options), _with_options(twin.config, twin.options)
    assert b.model.objective.type == 'InvertedGroupDRO' and t.model.objective.type == 'GroupDRO'
    assert b.model.objective.step_size == t.model.objective.step_size == 1.0
    b.model.objective.type = 'GroupDRO'
    assert b.model == t.model


def test_cuda_preset_moves_the_group_suite_onto_the_larger_data():
    suite, preset = SUITES['group'], PRESETS['cuda']
    args, root = preset_data_args(suite, preset)
    assert root == 'data/glyphs_imbalanced-x2/'
    assert args[args.index('--style-probs') + 1] == \
        'train:plain=0.45,gradient=0.3,texture=0.2,photo=0.05'
    student = suite.rows['student']
    x2 = Config.fromfile(osp.join(ROOT, preset.config(student.config)))
    assert x2.train_dataloader.dataset.data_root == root
    assert x2.train_dataloader.dataset.type == 'GroupCocoDataset'
    assert tuple(x2.train_dataloader.dataset.pipeline[2].scale) == (256, 256)
    assert x2.model.bbox_head.anchor_generator.octave_base_scale == 3
    row = suite.rows['group-dro-kd']
    cfg = _with_options(row.config, preset_options(suite, preset, row))
    assert cfg.model.student.endswith('retinanet_r18-w16_glyphs-x2.py')
    assert cfg.train_dataloader.dataset.data_root == root
    assert cfg.val_evaluator.ann_file == root + 'annotations/val.json'
