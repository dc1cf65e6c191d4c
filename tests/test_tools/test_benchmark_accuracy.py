"""tools/benchmark_accuracy.py --table-only: tables from stored runs, no training."""
import json

import pytest


def _metrics(m, groups=None):
    out = {'coco/bbox_mAP': m, 'coco/bbox_mAP_50': m + 0.1, 'options': []}
    if groups:
        names = sorted(groups)
        out.update({f'group/{g}/bbox_mAP': v for g, v in groups.items()})
        out.update({'group/worst_bbox_mAP': min(groups.values()),
                    'group/mean_bbox_mAP': sum(groups.values()) / len(groups),
                    'group/worst_group': float(names.index(min(groups, key=groups.get)))})
    return out


def test_table_only_writes_every_stored_row(load_tool, tmp_path, monkeypatch):
    tool = load_tool('benchmark_accuracy')
    monkeypatch.chdir(tmp_path)  # the tool changes directory to the repo
    g = dict(plain=0.4, gradient=0.4, texture=0.3, photo=0.1)
    results = {'teacher/0': _metrics(0.40), 'student/0': _metrics(0.30),
               'student/1': _metrics(0.32), 'crld/1': _metrics(0.36),
               'group-teacher-eval/0': _metrics(0.40, g),
               'group-kd/0': _metrics(0.33, g),
               'group-uniform-group-kd/0': _metrics(0.30, dict(g, photo=0.05))}
    (tmp_path / 'results.json').write_text(json.dumps(results))
    doc = tmp_path / 'bench.md'
    common = ['--table-only', '--work-dir', str(tmp_path), '--doc', str(doc), '--seeds', '0', '1']
    tool.main(common)
    text = doc.read_text()
    # crld ran for seed 1 only; the table holds it with its one seed and
    # closes (0.36 - 0.31) / (0.40 - 0.31) of the gap.
    assert '--rows student crld' in text
    assert '| crld |' in text and '| 56% |' in text
    assert '| student |' in text and '0.300 0.320' in text
    assert 'fgd' not in text.split('<!-- accuracy:end -->')[0].split('|---|')[-1]

    tool.main(common + ['--suite', 'group'])
    text = doc.read_text()
    assert '--suite group --seeds 0 1 --iters 1500 --rows kd uniform-group-kd' in text
    assert '| uniform-group-kd |' in text and 'teacher (balanced data)' in text
    assert (tmp_path / 'results.json').read_text() == json.dumps(results)  # nothing trained


def test_table_only_needs_a_teacher_run(load_tool, tmp_path, monkeypatch):
    tool = load_tool('benchmark_accuracy')
    monkeypatch.chdir(tmp_path)
    (tmp_path / 'results.json').write_text('{}')
    with pytest.raises(SystemExit):
        tool.main(['--table-only', '--work-dir', str(tmp_path), '--doc', str(tmp_path / 'd.md')])
