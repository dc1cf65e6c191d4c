"""Paired-difference arithmetic, the Markdown tables and ``docs/accuracy.json``.

A method row is read against its *twin*: the run of the same seed (same
initialisation of what is not pretrained, same data order) without the
method. The per-seed differences ``d_s = mAP(row, s) - mAP(twin, s)`` cancel
what the seed does to both, so their mean and spread say more than two
unpaired means. A row is "above" or "below" its twin when the 95 %
confidence interval of the mean difference (Student's t over the paired
seeds) excludes 0, and "within noise" otherwise.
"""
import json
import math
import statistics
from typing import Dict, List, Optional, Sequence

from mmkd_plugins.experiment import format_table, gap_closed  # noqa: F401 (re-exported)

# Two-sided 95 % quantiles of Student's t by degrees of freedom (n - 1).
_T95 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306,
        9: 2.262, 10: 2.228, 11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131,
        16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093, 20: 2.086, 25: 2.060, 30: 2.042}


def t95(dof: int) -> float:
    """Two-sided 95 % quantile of Student's t with ``dof`` degrees of freedom
    (the next smaller tabulated value above 20; 1.96 from 31 on)."""
    if dof < 1:
        raise ValueError(f'need at least 1 degree of freedom, got {dof}')
    if dof > 30:
        return 1.96
    return _T95[max(k for k in _T95 if k <= dof)]


def mean_std(values: Sequence[float]):
    """Mean and sample standard deviation (0 for a single value)."""
    values = list(values)
    if not values:
        raise ValueError('no values')
    return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def paired(row: Dict[int, float], twin: Dict[int, float]) -> Optional[dict]:
    """The paired difference of two rows' per-seed values.

    Args:
        row (dict): ``{seed: value}`` of the method.
        twin (dict): ``{seed: value}`` of its twin.

    Returns:
        dict or None: over the seeds both have (None if there are none):
        ``seeds``, per-seed ``diffs``, their ``mean`` and ``std``, the 95 %
        confidence interval ``ci`` (``(lo, hi)``, None for one seed), and the
        ``verdict``: ``'above'``, ``'below'``, ``'within noise'`` or
        ``'one seed'``.
    """
    seeds = sorted(set(row) & set(twin))
    if not seeds:
        return None
    diffs = [row[s] - twin[s] for s in seeds]
    mean, std = mean_std(diffs)
    if len(diffs) < 2:
        return dict(seeds=seeds, diffs=diffs, mean=mean, std=std, ci=None, verdict='one seed')
    half = t95(len(diffs) - 1) * std / math.sqrt(len(diffs))
    lo, hi = mean - half, mean + half
    verdict = 'above' if lo > 0 else 'below' if hi < 0 else 'within noise'
    return dict(seeds=seeds, diffs=diffs, mean=mean, std=std, ci=(lo, hi), verdict=verdict)


def pts(value: float, signed: bool = False) -> str:
    """An mAP fraction in points (0.412 -> '41.2')."""
    return f'{100 * value:+.1f}' if signed else f'{100 * value:.1f}'


def accuracy_records(suite: str, rows, results: Dict[str, dict], seeds: Sequence[int],
                     groups: Sequence[str] = ()) -> List[dict]:
    """``docs/accuracy.json`` objects of one suite, one per row with runs.

    Args:
        suite (str): the suite's name.
        rows (dict): ``{name: Row}`` (see :mod:`.suites`) in table order.
        results (dict): stored runs, ``{'<suite>/<row>/<seed>': metrics}``.
        seeds (Sequence[int]): the seeds to report.
        groups (Sequence[str]): group names, for suites with groups.

    Returns:
        list[dict]: ``suite, row, config, cfg_options, twin, seeds, map``
        (per seed, same order) and, with groups, ``worst_group_map`` and
        ``group_map`` (per seed, ``{group: mAP}``). The suite's teacher
        (``'<suite>/teacher/0'``) comes first, as row ``teacher``: trained
        here, with no options; evaluated here on the suite's data (a record
        that evaluates another suite's run), with the options it was
        evaluated with.
    """
    out = []
    teacher = results.get(f'{suite}/teacher/0')
    if teacher:
        options = teacher['options'] if teacher.get('evaluates') else []
        out.append(_record(suite, 'teacher', teacher['config'], options, None,
                           [(0, teacher)], groups))
    for name, row in rows.items():
        runs = [(s, results[f'{suite}/{name}/{s}']) for s in seeds
                if f'{suite}/{name}/{s}' in results]
        if runs:
            out.append(_record(suite, name, row.config, row.cfg_options, row.twin, runs, groups))
    return out


def _record(suite, name, config, options, twin, runs, groups) -> dict:
    rec = dict(suite=suite, row=name, config=config, cfg_options=list(options), twin=twin,
               seeds=[s for s, _ in runs], map=[round(m['coco/bbox_mAP'], 4) for _, m in runs])
    if groups:
        rec['worst_group_map'] = [round(m['group/worst_bbox_mAP'], 4) for _, m in runs]
        rec['group_map'] = [{g: round(m[f'group/{g}/bbox_mAP'], 4) for g in groups
                             if f'group/{g}/bbox_mAP' in m} for _, m in runs]
    return rec


def merge_accuracy_json(path: str, suite: str, records: List[dict]) -> List[dict]:
    """Replace ``suite``'s records in the json list at ``path`` (other
    suites are kept, in their order) and write it back."""
    try:
        with open(path, encoding='utf-8') as f:
            existing = json.load(f)
    except FileNotFoundError:
        existing = []
    if not isinstance(existing, list):
        raise ValueError(f'{path} must hold a json list of row objects')
    merged = [r for r in existing if r.get('suite') != suite] + list(records)
    with open(path, 'w', encoding='utf-8') as f:
        json.dump(merged, f, indent=1)
        f.write('\n')
    return merged


def write_markdown(doc: str, block: str, start: str, end: str) -> None:
    """Put ``block`` between the ``start`` and ``end`` markers of ``doc``
    (appended with the markers if they are not there yet)."""
    try:
        with open(doc, encoding='utf-8') as f:
            text = f.read()
    except FileNotFoundError:
        text = '# Benchmarks\n'
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + start + '\n' + block + '\n' + end + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + '\n\n' + start + '\n' + block + '\n' + end + '\n'
    with open(doc, 'w', encoding='utf-8') as f:
        f.write(text)


def suite_table(suite, results: Dict[str, dict], seeds: Sequence[int],
                prefix: Optional[str] = None, teacher_key: Optional[str] = None) -> List[dict]:
    """The rows of a suite's Markdown table, from its stored runs.

    Each row: its name, config (with its extra options), the seeds that
    ran, mAP as mean ± std and per seed (points), the paired difference to
    its twin (mean ± std, 95 % interval, verdict), the fraction of the
    teacher-student gap closed, and for a suite with a ``reference`` row its
    mean as a fraction of the reference's (``% of <reference>``); the
    teacher (seed 0) comes first. Rows with no run for ``seeds`` are left
    out. ``_maps`` and ``_paired`` keep the numbers for the plot.
    ``teacher_key`` is the teacher's run (default ``<prefix>/teacher/0``;
    another suite's when the suite reuses its teacher).
    """
    prefix = prefix or suite.name
    per_row = {name: {s: results[f'{prefix}/{name}/{s}']['coco/bbox_mAP'] for s in seeds
                      if f'{prefix}/{name}/{s}' in results} for name in suite.rows}
    teacher = results.get(teacher_key or f'{prefix}/teacher/0')
    student = per_row.get('student') or {}
    reference = per_row.get(suite.reference) if getattr(suite, 'reference', None) else None
    table = []
    if teacher:
        table.append({'row': 'teacher', 'config': teacher.get('config', suite.teacher),
                      'seeds': '0', 'mAP': pts(teacher['coco/bbox_mAP']),
                      'per seed': pts(teacher['coco/bbox_mAP']),
                      '_maps': [teacher['coco/bbox_mAP']]})
    for name, row in suite.rows.items():
        maps = per_row[name]
        if not maps:
            continue
        mean, std = mean_std(maps.values())
        entry = {'row': name, 'config': ' '.join([row.config, *row.cfg_options]),
                 'seeds': ' '.join(map(str, maps)),
                 'mAP': f'{pts(mean)} ± {pts(std)}',
                 'per seed': ' / '.join(pts(v) for v in maps.values()),
                 'twin': row.twin or '', '_maps': list(maps.values()), '_paired': None}
        if row.twin and per_row.get(row.twin):
            p = paired(maps, per_row[row.twin])
            if p is not None:
                entry['_paired'] = p
                entry['Δ vs twin'] = f'{pts(p["mean"], True)} ± {pts(p["std"])}'
                entry['95 % CI'] = '' if p['ci'] is None else \
                    f'[{pts(p["ci"][0], True)}, {pts(p["ci"][1], True)}]'
                entry['verdict'] = p['verdict']
        if teacher and student and name != 'student':
            closed = gap_closed(statistics.mean(student.values()), mean,
                                teacher['coco/bbox_mAP'])
            entry['gap closed'] = '' if closed is None else f'{closed:.0%}'
        if reference and name != suite.reference:
            ref = statistics.mean(reference.values())
            entry[f'% of {suite.reference}'] = f'{mean / ref:.0%}' if ref > 0 else ''
        table.append(entry)
    return table


TABLE_COLUMNS = ['row', 'twin', 'seeds', 'mAP', 'per seed', 'Δ vs twin', '95 % CI', 'verdict',
                 'gap closed']


def table_columns(suite) -> List[str]:
    """The columns of ``suite``'s table: :data:`TABLE_COLUMNS`, plus
    ``% of <reference>`` for a suite with a reference row."""
    reference = getattr(suite, 'reference', None)
    return TABLE_COLUMNS + ([f'% of {reference}'] if reference else [])


def _paired_cell(p: Optional[dict]) -> str:
    return '' if p is None else f'{pts(p["mean"], True)} ± {pts(p["std"])}'


def _ci_cell(p: Optional[dict]) -> str:
    return '' if p is None or p['ci'] is None else \
        f'[{pts(p["ci"][0], True)}, {pts(p["ci"][1], True)}]'


def worst_group_name(metrics: dict, groups: Sequence[str]) -> str:
    """The name of a run's worst group (``GroupCocoMetric`` logs its index
    into the sorted group names)."""
    return sorted(groups)[int(metrics['group/worst_group'])]


def group_table(suite, results: Dict[str, dict], seeds: Sequence[int],
                prefix: Optional[str] = None) -> List[dict]:
    """The rows of a group suite's Markdown table, from its stored runs.

    Each row: its name, twin and seeds; overall mAP and worst-group mAP
    (mean ± std over seeds, points) with their paired differences to the
    twin (the worst group's with its 95 % interval and verdict) and to the
    suite's ``reference`` row; each group's mean mAP; and the worst group
    of each seed. The teacher evaluated per group on the suite's data comes
    first, so that each group's column shows what the teacher can give.
    Rows with no run for ``seeds`` are left out. ``_maps`` (worst-group
    mAP per seed) and ``_paired`` (its paired difference to the twin) feed
    the picture.
    """
    prefix = prefix or suite.name
    groups = suite.groups
    runs = {name: {s: results[f'{prefix}/{name}/{s}'] for s in seeds
                   if f'{prefix}/{name}/{s}' in results} for name in suite.rows}

    def per_seed(name, key):
        return {s: m[key] for s, m in runs.get(name, {}).items()}

    table = []
    teacher = results.get(f'{prefix}/teacher/0')
    if teacher and 'group/worst_bbox_mAP' in teacher:
        entry = {'row': 'teacher', 'seeds': '0', 'mAP': pts(teacher['coco/bbox_mAP']),
                 'worst-group mAP': pts(teacher['group/worst_bbox_mAP']),
                 'worst group per seed': worst_group_name(teacher, groups),
                 '_maps': [teacher['group/worst_bbox_mAP']]}
        entry.update({g: pts(teacher[f'group/{g}/bbox_mAP']) for g in groups})
        table.append(entry)
    reference = suite.reference
    for name, row in suite.rows.items():
        if not runs[name]:
            continue
        maps, worst = per_seed(name, 'coco/bbox_mAP'), per_seed(name, 'group/worst_bbox_mAP')
        entry = {'row': name, 'twin': row.twin or '', 'seeds': ' '.join(map(str, maps)),
                 'mAP': '{} ± {}'.format(*map(pts, mean_std(maps.values()))),
                 'worst-group mAP': '{} ± {}'.format(*map(pts, mean_std(worst.values()))),
                 'worst group per seed': ' '.join(worst_group_name(m, groups)
                                                  for m in runs[name].values()),
                 '_maps': list(worst.values()), '_paired': None}
        for g in groups:
            values = [m[f'group/{g}/bbox_mAP'] for m in runs[name].values()]
            entry[g] = pts(statistics.mean(values))
        if row.twin and runs.get(row.twin):
            p = paired(worst, per_seed(row.twin, 'group/worst_bbox_mAP'))
            entry.update({'Δ mAP vs twin': _paired_cell(paired(
                              maps, per_seed(row.twin, 'coco/bbox_mAP'))),
                          'Δ worst vs twin': _paired_cell(p), '95 % CI': _ci_cell(p),
                          'verdict': '' if p is None else p['verdict'], '_paired': p})
        if reference and name != reference and runs.get(reference):
            p = paired(worst, per_seed(reference, 'group/worst_bbox_mAP'))
            entry[f'Δ worst vs {reference}'] = '' if p is None else \
                f'{_paired_cell(p)} ({p["verdict"]})'
            entry[f'Δ mAP vs {reference}'] = _paired_cell(
                paired(maps, per_seed(reference, 'coco/bbox_mAP')))
        table.append(entry)
    return table


def group_columns(suite) -> List[str]:
    """The columns of :func:`group_table` for ``suite``."""
    ref = [f'Δ worst vs {suite.reference}', f'Δ mAP vs {suite.reference}'] \
        if suite.reference else []
    return (['row', 'twin', 'seeds', 'mAP', 'Δ mAP vs twin', 'worst-group mAP',
             'Δ worst vs twin', '95 % CI', 'verdict', *ref, *suite.groups,
             'worst group per seed'])
