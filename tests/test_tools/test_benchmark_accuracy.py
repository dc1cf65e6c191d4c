"""tools/benchmark_accuracy.py: arguments, and --table-only writing the
table, the picture and docs/accuracy.json from stored runs."""
import json

import pytest


def _run(m):
    return {'coco/bbox_mAP': m, 'config': 'x.py', 'options': [], 'inputs': {}}


def test_table_only_writes_table_json_and_picture(load_tool, tmp_path):
    tool = load_tool('benchmark_accuracy')
    results = {'glyphs/teacher/0': _run(0.50)}
    for seed, (s, i, f, b) in enumerate([(0.30, 0.33, 0.40, 0.31), (0.31, 0.33, 0.41, 0.32)]):
        results.update({f'glyphs/student/{seed}': _run(s), f'glyphs/inherit/{seed}': _run(i),
                        f'glyphs/fgd/{seed}': _run(f),
                        f'glyphs/broken-fgd-shuffled/{seed}': _run(b)})
    (tmp_path / 'results.json').write_text(json.dumps(results))
    doc, js = tmp_path / 'bench.md', tmp_path / 'accuracy.json'
    js.write_text(json.dumps([{'suite': 'group', 'row': 'kd'}]))
    tool.main(['--table-only', '--work-dir', str(tmp_path), '--doc', str(doc),
               '--json', str(js), '--seeds', '0', '1'])
    text = doc.read_text()
    assert '<!-- glyphs:start -->' in text and '<!-- glyphs:end -->' in text
    assert '| fgd | inherit | 0 1 | 40.5 ± 0.7 |' in text
    # broken - fgd: -9, -9 points: clearly below its twin
    assert '| broken-fgd-shuffled | fgd | 0 1 | 31.5 ± 0.7 | 31.0 / 32.0 | -9.0 ± 0.0 |' in text
    assert 'below' in text
    assert (tmp_path / 'accuracy_glyphs.png').stat().st_size > 1000
    rows = json.loads(js.read_text())
    assert rows[0] == {'suite': 'group', 'row': 'kd'}  # other suites are kept
    fgd = next(r for r in rows if r['row'] == 'fgd')
    assert fgd['suite'] == 'glyphs' and fgd['twin'] == 'inherit'
    assert fgd['seeds'] == [0, 1] and fgd['map'] == [0.40, 0.41]
    assert fgd['config'] == 'configs/fgd/fgd_retinanet-r18-w16_retinanet-r50-w32_glyphs.py'
    assert (tmp_path / 'results.json').read_text() == json.dumps(results)  # nothing trained


def test_arguments(load_tool, tmp_path, capsys):
    tool = load_tool('benchmark_accuracy')
    with pytest.raises(SystemExit):
        tool.main(['--rows', 'fgd', 'nope', '--table-only', '--work-dir', str(tmp_path)])
    assert "has no rows ['nope']" in capsys.readouterr().err
    (tmp_path / 'results.json').write_text('{}')
    with pytest.raises(SystemExit):
        tool.main(['--table-only', '--work-dir', str(tmp_path), '--doc', str(tmp_path / 'd.md'),
                   '--json', str(tmp_path / 'a.json')])
    assert 'holds no run of suite glyphs' in capsys.readouterr().err


def _group_run(overall, worst_group, **groups):
    run = _run(overall)
    run.update({f'group/{g}/bbox_mAP': v for g, v in groups.items()})
    run.update({'group/worst_bbox_mAP': min(groups.values()),
                'group/worst_group': worst_group})  # index into the sorted names
    return run


def test_table_only_writes_the_group_table(load_tool, tmp_path):
    tool = load_tool('benchmark_accuracy')
    maps = dict(plain=0.40, gradient=0.38, texture=0.35)
    results = {'group/teacher/0': dict(_group_run(0.344, 1, photo=0.29, **maps),
                                       evaluates='glyphs/teacher/0',
                                       options=['test_evaluator.type=GroupCocoMetric'])}
    for seed in (0, 1):
        results[f'group/student/{seed}'] = _group_run(0.20, 1, photo=0.10 + seed / 100, **maps)
        results[f'group/kd/{seed}'] = _group_run(0.25, 1, photo=0.15 + seed / 100, **maps)
        results[f'group/group-dro-kd/{seed}'] = _group_run(0.25, 1, photo=0.18 + seed / 50,
                                                           **maps)
    (tmp_path / 'results.json').write_text(json.dumps(results))
    doc, js = tmp_path / 'bench.md', tmp_path / 'accuracy.json'
    tool.main(['--suite', 'group', '--table-only', '--work-dir', str(tmp_path), '--doc',
               str(doc), '--json', str(js), '--seeds', '0', '1'])
    text = doc.read_text()
    assert '<!-- group:start -->' in text and '<!-- group:end -->' in text
    assert '--style-probs train:plain=0.45,gradient=0.3,texture=0.2,photo=0.05' in text
    # the teacher's row, with each group's mAP: what it can give each group
    assert '| teacher |  | 0 | 34.4 |  | 29.0 |  |  |  |  |  | 40.0 | 38.0 | 35.0 | 29.0 | ' \
           'photo |' in text
    # group DRO vs kd on the worst group: 18 - 15 and 20 - 16 points
    assert '| group-dro-kd | kd | 0 1 | 25.0 ± 0.0 | +0.0 ± 0.0 | 19.0 ± 1.4 | +3.5 ± 0.7 |' \
        in text
    assert (tmp_path / 'accuracy_group.png').stat().st_size > 1000
    rows = json.loads(js.read_text())
    assert [r['row'] for r in rows] == ['teacher', 'student', 'kd', 'group-dro-kd']
    dro = rows[-1]
    assert dro['suite'] == 'group' and dro['twin'] == 'kd' and dro['seeds'] == [0, 1]
    assert dro['worst_group_map'] == [0.18, 0.20]
    assert dro['group_map'][1] == dict(maps, photo=0.20)
    assert dro['config'].startswith('configs/group_dro/group-dro-kd_')


def test_group_suite_runs_from_one_command(load_tool, tmp_path, monkeypatch):
    """--suite group with training and evaluation faked: the glyphs suite's
    teacher is trained once under its own key, evaluated per group, the
    rows and their twins train, and the outputs are written."""
    from mmkd_plugins.benchmark import runs
    tool = load_tool('benchmark_accuracy')
    trained, evaluated = [], []

    def train(config, work_dir, options, threads=None):
        import os
        trained.append((config, work_dir, list(options)))
        os.makedirs(work_dir, exist_ok=True)
        ckpt = f'{work_dir}/iter_1.pth'
        open(ckpt, 'w').write(config)
        open(f'{work_dir}/last_checkpoint', 'w').write(ckpt)
        return _group_run(0.25, 1, photo=0.1 + 0.01 * len(trained), plain=0.3, gradient=0.3,
                          texture=0.3)

    def evaluate(config, checkpoint, work_dir, options, threads=None):
        evaluated.append((config, checkpoint, list(options)))
        return _group_run(0.344, 1, photo=0.29, plain=0.40, gradient=0.38, texture=0.35)

    monkeypatch.setattr(runs.ex, 'train', train)
    monkeypatch.setattr(runs.ex, 'evaluate', evaluate)
    monkeypatch.setattr(runs.Harness, 'make_data',
                        lambda self, suite=None: 'data of ' + (suite or self.suite).name)
    monkeypatch.setattr(runs.Harness, 'pretrain', lambda self: {'p.pth': 'k'})
    monkeypatch.setattr(runs, 'config_digest', lambda config: 'digest')
    doc, js = tmp_path / 'bench.md', tmp_path / 'accuracy.json'
    tool.main(['--suite', 'group', '--rows', 'kd-reweighted', '--seeds', '0', '--work-dir',
               str(tmp_path), '--doc', str(doc), '--json', str(js)])
    configs = [c[0] for c in trained]
    assert configs[0] == 'configs/benchmark/retinanet_r50-w32_glyphs.py'
    assert trained[0][1] == str(tmp_path / 'glyphs' / 'teacher_seed0')
    # kd-reweighted and its twin kd; the student is not asked for
    assert sorted(configs[1:]) == [
        'configs/group_dro/kd-reweighted_retinanet-r18-w16_retinanet-r50-w32_glyphs-imbalanced.py',
        'configs/group_dro/kd_retinanet-r18-w16_retinanet-r50-w32_glyphs-imbalanced.py']
    ckpt = str(tmp_path / 'glyphs' / 'teacher_seed0' / 'iter_1.pth')
    assert all(f'model.teacher_ckpt={ckpt}' in c[2] for c in trained[1:])
    assert evaluated == [('configs/benchmark/retinanet_r50-w32_glyphs.py', ckpt, [
        'test_dataloader.dataset.data_root=data/glyphs_imbalanced/',
        'test_evaluator.ann_file=data/glyphs_imbalanced/annotations/val.json',
        'test_evaluator.type=GroupCocoMetric'])]
    stored = json.loads((tmp_path / 'results.json').read_text())
    assert sorted(stored) == ['glyphs/teacher/0', 'group/kd-reweighted/0', 'group/kd/0',
                              'group/teacher/0']
    assert stored['glyphs/teacher/0']['inputs']['data'] == 'data of glyphs'
    assert stored['group/kd/0']['inputs']['data'] == 'data of group'
    assert '| kd-reweighted | kd | 0 |' in doc.read_text()
    assert [r['row'] for r in json.loads(js.read_text())] == ['teacher', 'kd', 'kd-reweighted']


def test_data_free_suite_reuses_the_glyph_teacher_and_runs_on_the_cpu_preset(
        load_tool, tmp_path, capsys):
    tool = load_tool('benchmark_accuracy')
    with pytest.raises(SystemExit):
        tool.main(['--suite', 'data-free', '--device', 'cuda', '--table-only',
                   '--work-dir', str(tmp_path)])
    # the suite has configs for the cpu preset only (Suite.presets)
    assert '--suite data-free has no configs for --device cuda; its devices: cpu' in \
        capsys.readouterr().err
    results = {'glyphs/teacher/0': _run(0.344)}
    for seed, maps in enumerate([(0.25, 0.02, 0.08, 0.13), (0.24, 0.03, 0.09, 0.12)]):
        # the upper bound is stored once, as the glyph suite's inherit row
        results[f'glyphs/inherit/{seed}'] = _run(maps[0])
        for row, m in zip(('noise-kd', 'no-filter', 'ta-dfkd'), maps[1:]):
            results[f'data-free/{row}/{seed}'] = _run(m)
    (tmp_path / 'results.json').write_text(json.dumps(results))
    doc, js = tmp_path / 'bench.md', tmp_path / 'accuracy.json'
    tool.main(['--suite', 'data-free', '--table-only', '--work-dir', str(tmp_path),
               '--doc', str(doc), '--json', str(js), '--seeds', '0', '1'])
    text = doc.read_text()
    assert '<!-- data-free:start -->' in text and '% of real-data-student' in text
    assert '| teacher |' in text
    assert 'Teacher `configs/benchmark/retinanet_r50-w32_glyphs.py`' in text
    # ta-dfkd: 12.5 of 24.5 points; +4.0 over no-filter on both seeds
    assert '| ta-dfkd | no-filter | 0 1 | 12.5 ± 0.7 |' in text and '| 51% |' in text
    assert (tmp_path / 'accuracy_data_free.png').stat().st_size > 1000
    rows = {r['row']: r for r in json.loads(js.read_text())}
    assert rows['ta-dfkd']['suite'] == 'data-free' and rows['ta-dfkd']['twin'] == 'no-filter'
    assert rows['real-data-student']['config'] == (
        'configs/benchmark/inherit_retinanet-r18-w16_retinanet-r50-w32_glyphs.py')
