"""Paired-difference arithmetic and the benchmark's outputs, on hand-made numbers."""
import json
import math

import pytest

from mmkd_plugins.benchmark import tables
from mmkd_plugins.benchmark.suites import Row, Suite


def test_paired_difference_by_hand():
    row = {0: 0.40, 1: 0.42, 2: 0.41, 5: 0.50}
    twin = {0: 0.38, 1: 0.39, 2: 0.40, 7: 0.10}   # seeds 5 and 7 have no pair
    p = tables.paired(row, twin)
    assert p['seeds'] == [0, 1, 2]
    assert p['diffs'] == pytest.approx([0.02, 0.03, 0.01])
    assert p['mean'] == pytest.approx(0.02)
    assert p['std'] == pytest.approx(0.01)            # sample std of 2, 3, 1 (x0.01)
    half = 4.303 * 0.01 / math.sqrt(3)                 # t(0.975, 2 dof)
    assert p['ci'] == pytest.approx((0.02 - half, 0.02 + half))
    # 0.02 - 0.0248 < 0 < 0.02 + 0.0248: three seeds cannot tell this from 0
    assert p['ci'][0] < 0 < p['ci'][1] and p['verdict'] == 'within noise'


def test_paired_verdicts():
    tight = tables.paired({0: 0.40, 1: 0.41, 2: 0.42}, {0: 0.37, 1: 0.38, 2: 0.39})
    assert tight['std'] == pytest.approx(0) and tight['verdict'] == 'above'
    below = tables.paired({0: 0.30, 1: 0.31, 2: 0.29, 3: 0.30}, {0: 0.40, 1: 0.40,
                                                                   2: 0.41, 3: 0.39})
    assert below['mean'] == pytest.approx(-0.10) and below['verdict'] == 'below'
    one = tables.paired({0: 0.5}, {0: 0.4})
    assert one['ci'] is None and one['verdict'] == 'one seed'
    assert tables.paired({0: 0.5}, {1: 0.4}) is None


def test_t95_table():
    assert tables.t95(1) == 12.706 and tables.t95(4) == 2.776
    assert tables.t95(22) == 2.086 and tables.t95(100) == 1.96
    with pytest.raises(ValueError):
        tables.t95(0)


def _suite():
    rows = {'student': Row('s.py', twin=None, distills=False),
            'inherit': Row('i.py', twin='student'),
            'fgd': Row('f.py', twin='inherit', options=('a=1',))}
    return Suite(name='toy', data=(), data_root='d/', rows=rows, default_rows=tuple(rows))


def _results():
    res = {'toy/teacher/0': {'coco/bbox_mAP': 0.50, 'config': 't.py'}}
    for seed, (s, i, f) in enumerate([(0.30, 0.32, 0.40), (0.31, 0.33, 0.42),
                                      (0.29, 0.31, 0.41)]):
        res[f'toy/student/{seed}'] = {'coco/bbox_mAP': s}
        res[f'toy/inherit/{seed}'] = {'coco/bbox_mAP': i}
        res[f'toy/fgd/{seed}'] = {'coco/bbox_mAP': f}
    return res


def test_suite_table_and_gap_closed():
    table = tables.suite_table(_suite(), _results(), [0, 1, 2])
    assert [r['row'] for r in table] == ['teacher', 'student', 'inherit', 'fgd']
    fgd = table[-1]
    assert fgd['mAP'] == '41.0 ± 1.0' and fgd['per seed'] == '40.0 / 42.0 / 41.0'
    assert fgd['Δ vs twin'] == '+9.0 ± 1.0'      # 8, 9, 10 points
    assert fgd['verdict'] == 'above'
    assert fgd['gap closed'] == '55%'            # (0.41 - 0.30) / (0.50 - 0.30)
    assert fgd['config'] == 'f.py a=1'
    assert 'Δ vs twin' not in table[1]           # the student has no twin
    md = tables.format_table(table, tables.TABLE_COLUMNS)
    assert md.splitlines()[0].startswith('| row | twin | seeds | mAP |')
    assert len(md.splitlines()) == 2 + 4
    # seeds that did not run are left out, a row with none disappears
    assert [r['row'] for r in tables.suite_table(_suite(), _results(), [7])] == ['teacher']


def test_accuracy_records_and_merge(tmp_path):
    recs = tables.accuracy_records('toy', _suite().rows, _results(), [0, 2])
    # the teacher trained here comes first, as the config itself (no options)
    assert recs[0] == dict(suite='toy', row='teacher', config='t.py', cfg_options=[],
                           twin=None, seeds=[0], map=[0.50])
    assert recs[3] == dict(suite='toy', row='fgd', config='f.py', cfg_options=['a=1'],
                           twin='inherit', seeds=[0, 2], map=[0.40, 0.41])
    assert recs[1]['row'] == 'student' and recs[1]['twin'] is None
    path = tmp_path / 'accuracy.json'
    path.write_text(json.dumps([dict(suite='other', row='x'), dict(suite='toy', row='old')]))
    merged = tables.merge_accuracy_json(str(path), 'toy', recs)
    assert [(r['suite'], r['row']) for r in merged] == [
        ('other', 'x'), ('toy', 'teacher'), ('toy', 'student'), ('toy', 'inherit'),
        ('toy', 'fgd')]
    assert json.loads(path.read_text()) == merged
    path.write_text('{"not": "a list"}')
    with pytest.raises(ValueError, match='json list'):
        tables.merge_accuracy_json(str(path), 'toy', recs)


def test_accuracy_records_with_groups():
    res = {'g/kd/0': {'coco/bbox_mAP': 0.4, 'group/worst_bbox_mAP': 0.2,
                      'group/plain/bbox_mAP': 0.5, 'group/photo/bbox_mAP': 0.2}}
    rows = {'kd': Row('kd.py', twin=None)}
    rec, = tables.accuracy_records('g', rows, res, [0, 1], groups=('plain', 'photo'))
    assert rec['worst_group_map'] == [0.2]
    assert rec['group_map'] == [{'plain': 0.5, 'photo': 0.2}]


def test_write_markdown(tmp_path):
    doc = tmp_path / 'b.md'
    tables.write_markdown(str(doc), 'one', '<!-- a -->', '<!-- /a -->')
    tables.write_markdown(str(doc), 'two', '<!-- a -->', '<!-- /a -->')
    text = doc.read_text()
    assert text.count('<!-- a -->') == 1 and 'two' in text and 'one' not in text


def _group_suite():
    rows = {'student': Row('s.py', twin=None, distills=False),
            'kd': Row('kd.py', twin='student'),
            'dro': Row('dro.py', twin='kd'),
            'dro-eta1': Row('dro.py', twin='dro', options=('eta=1', )),
            'dro-early': Row('dro.py', twin='dro', iters=600)}
    return Suite(name='g', data=(), data_root='d/', rows=rows, default_rows=tuple(rows),
                 groups=('plain', 'photo'), teacher_suite='t', reference='kd')


def _group_run(overall, plain, photo):
    # GroupCocoMetric's worst_group indexes the sorted names: photo 0, plain 1.
    return {'coco/bbox_mAP': overall, 'group/plain/bbox_mAP': plain,
            'group/photo/bbox_mAP': photo, 'group/worst_bbox_mAP': min(plain, photo),
            'group/worst_group': 0 if photo <= plain else 1}


def _group_results():
    res = {'g/teacher/0': dict(_group_run(0.34, 0.40, 0.25), config='t.py',
                               options=['test_evaluator.type=GroupCocoMetric'],
                               evaluates='t/teacher/0')}
    for seed, (s, k, d, e) in enumerate([((0.20, 0.30, 0.10), (0.25, 0.32, 0.15),
                                          (0.26, 0.31, 0.18), (0.22, 0.30, 0.31)),
                                         ((0.22, 0.31, 0.12), (0.27, 0.33, 0.16),
                                          (0.27, 0.32, 0.20), (0.23, 0.29, 0.30))]):
        res[f'g/student/{seed}'] = _group_run(*s)
        res[f'g/kd/{seed}'] = _group_run(*k)
        res[f'g/dro/{seed}'] = _group_run(*d)
        res[f'g/dro-early/{seed}'] = _group_run(*e)
    return res


def test_group_table_by_hand():
    suite = _group_suite()
    table = tables.group_table(suite, _group_results(), [0, 1])
    assert [r['row'] for r in table] == ['teacher', 'student', 'kd', 'dro', 'dro-early']
    teacher = table[0]
    assert (teacher['mAP'], teacher['worst-group mAP'], teacher['plain'], teacher['photo'],
            teacher['worst group per seed']) == ('34.0', '25.0', '40.0', '25.0', 'photo')
    dro = table[3]
    assert dro['mAP'] == '26.5 ± 0.7' and dro['worst-group mAP'] == '19.0 ± 1.4'
    assert dro['plain'] == '31.5' and dro['photo'] == '19.0'
    # worst group vs kd: photo 18 - 15 = +3, 20 - 16 = +4 points
    assert dro['Δ worst vs twin'] == '+3.5 ± 0.7'
    assert dro['Δ mAP vs twin'] == '+0.5 ± 0.7'   # +1, 0
    half = 12.706 * (0.5 * math.sqrt(2)) / math.sqrt(2)  # t(0.975, 1 dof), std of 3 and 4
    assert dro['95 % CI'] == f'[{3.5 - half:+.1f}, {3.5 + half:+.1f}]'
    assert dro['verdict'] == 'within noise'
    assert dro['Δ worst vs kd'] == '+3.5 ± 0.7 (within noise)'
    assert dro['_maps'] == [0.18, 0.20] and dro['_paired']['diffs'] == pytest.approx([0.03, 0.04])
    early = table[4]
    # the worst group changes: plain 30, 29 (photo 31, 30)
    assert early['worst group per seed'] == 'plain plain'
    assert early['worst-group mAP'] == '29.5 ± 0.7'
    assert early['Δ worst vs twin'] == '+10.5 ± 2.1'       # vs dro: 30 - 18, 29 - 20
    # vs kd: 30 - 15, 29 - 16 = 15, 13; 12.706 * 1.41 / sqrt(2) = 12.7 < 14
    assert early['Δ worst vs kd'] == '+14.0 ± 1.4 (above)'
    assert 'Δ worst vs kd' not in table[2]                 # kd itself
    md = tables.format_table(table, tables.group_columns(suite))
    assert md.splitlines()[0] == (
        '| row | twin | seeds | mAP | Δ mAP vs twin | worst-group mAP | Δ worst vs twin | '
        '95 % CI | verdict | Δ worst vs kd | Δ mAP vs kd | plain | photo | '
        'worst group per seed |')


def test_group_accuracy_records_carry_the_teacher_and_the_schedule():
    suite = _group_suite()
    recs = tables.accuracy_records('g', suite.rows, _group_results(), [0, 1], suite.groups)
    assert [r['row'] for r in recs] == ['teacher', 'student', 'kd', 'dro', 'dro-early']
    teacher = recs[0]
    assert teacher == dict(suite='g', row='teacher', config='t.py',
                           cfg_options=['test_evaluator.type=GroupCocoMetric'], twin=None,
                           seeds=[0], map=[0.34], worst_group_map=[0.25],
                           group_map=[{'plain': 0.40, 'photo': 0.25}])
    early = recs[-1]
    # A row that trains a shorter schedule is a variant of its config.
    assert early['cfg_options'][:2] == ['train_cfg.max_iters=600', 'train_cfg.val_interval=600']
    assert early['worst_group_map'] == [0.30, 0.29]
    # Without groups the teacher row carries no group figures.
    plain = tables.accuracy_records('g', suite.rows, _group_results(), [0, 1])
    assert plain[0]['row'] == 'teacher' and 'worst_group_map' not in plain[0]
    # No teacher record, no teacher row.
    res = {k: v for k, v in _group_results().items() if k != 'g/teacher/0'}
    assert 'teacher' not in [r['row'] for r in tables.accuracy_records(
        'g', suite.rows, res, [0, 1], groups=('plain', 'photo'))]


def test_a_reference_row_gets_a_percentage_column():
    rows = {'real': Row('r.py', twin=None), 'noise': Row('n.py', twin=None),
            'gen': Row('g.py', twin='noise')}
    suite = Suite(name='df', data=(), data_root='d/', rows=rows, default_rows=tuple(rows),
                  teacher_suite='toy', reference='real')
    res = {'toy/teacher/0': {'coco/bbox_mAP': 0.50, 'config': 't.py'}}
    for seed, (r, n, g) in enumerate([(0.20, 0.02, 0.11), (0.24, 0.04, 0.13)]):
        for row, m in (('real', r), ('noise', n), ('gen', g)):
            res[f'df/{row}/{seed}'] = {'coco/bbox_mAP': m}
    table = tables.suite_table(suite, res, [0, 1], teacher_key='toy/teacher/0')
    assert [r['row'] for r in table] == ['teacher', 'real', 'noise', 'gen']
    gen = table[-1]
    assert gen['% of real'] == '55%'           # 0.12 / 0.22
    assert table[2]['% of real'] == '14%'      # 0.03 / 0.22
    assert '% of real' not in table[1] and 'gap closed' not in gen  # no 'student' row
    assert gen['Δ vs twin'] == '+9.0 ± 0.0' and gen['verdict'] == 'above'
    assert tables.table_columns(suite)[-1] == '% of real'
    assert tables.table_columns(_suite()) == tables.TABLE_COLUMNS
    # without teacher_key the teacher is looked up under the suite's own name
    assert [r['row'] for r in tables.suite_table(suite, res, [0, 1])][0] == 'real'
