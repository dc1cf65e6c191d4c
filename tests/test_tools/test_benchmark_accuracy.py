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


def test_data_free_suite_reuses_the_glyph_teacher_and_runs_on_the_cpu_preset(
        load_tool, tmp_path, capsys):
    tool = load_tool('benchmark_accuracy')
    with pytest.raises(SystemExit):
        tool.main(['--suite', 'data-free', '--device', 'cuda', '--table-only',
                   '--work-dir', str(tmp_path)])
    assert '--suite data-free runs only with --device cpu' in capsys.readouterr().err
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
    assert '| teacher |' in text and 'Teacher `configs/benchmark/retinanet_r50-w32_glyphs.py`' in text
    # ta-dfkd: 12.5 of 24.5 points; +4.0 over no-filter on both seeds
    assert '| ta-dfkd | no-filter | 0 1 | 12.5 ± 0.7 |' in text and '| 51% |' in text
    assert (tmp_path / 'accuracy_data_free.png').stat().st_size > 1000
    rows = {r['row']: r for r in json.loads(js.read_text())}
    assert rows['ta-dfkd']['suite'] == 'data-free' and rows['ta-dfkd']['twin'] == 'no-filter'
    assert rows['real-data-student']['config'] == (
        'configs/benchmark/inherit_retinanet-r18-w16_retinanet-r50-w32_glyphs.py')
