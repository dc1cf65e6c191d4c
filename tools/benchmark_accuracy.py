#!/usr/bin/env python
"""Accuracy benchmark: a miniature of the COCO distillation recipe, rows as
paired differences to their twins.

    python tools/benchmark_accuracy.py [--suite glyphs] [--seeds 0 1 2] \
        [--rows student inherit fgd ...] [--jobs 2] [--device cpu|cuda]
    python tools/benchmark_accuracy.py --table-only     # tables from stored runs
    python tools/benchmark_accuracy.py --suite group    # group robustness
    python tools/benchmark_accuracy.py --suite data-free  # TA-DFKD (cpu only)

It makes the suite's data (``tools/make_demo_data.py``; the webly suite's
web pool too), pretrains the backbones on glyph crops
(``tools/pretrain_backbone.py``), trains the teacher once (the webly suite
reuses the glyph suite's), then every row once per seed, and writes the table into
``docs/benchmarks.md`` (between the suite's markers), the rows into
``docs/accuracy.json`` and a picture beside the doc. Finished runs are kept
in ``<work-dir>/results.json`` and reused while their options and inputs
(pretrained weights, teacher checkpoint, data) are unchanged; see
``mmkd_plugins/benchmark/``.

The ``group`` suite distils from the ``glyphs`` suite's teacher (trained on
the balanced data; the same run, trained first if missing), evaluates it
per group on the imbalanced data's validation split, and tables overall,
worst-group and per-group mAP.

The ``data-free`` suite distils from the ``glyphs`` suite's teacher too;
its ``real-data-student`` row is the glyph suite's ``inherit`` runs (a
``shared`` row: stored runs reused, missing seeds trained under the glyph
suite's key), and its table adds each row's mean as a % of that upper bound.
"""
import argparse
import os
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from mmkd_plugins.benchmark import plots, tables  # noqa: E402
from mmkd_plugins.benchmark.runs import Harness, load_results  # noqa: E402
from mmkd_plugins.benchmark.suites import PRESETS, SUITES, preset_data_args  # noqa: E402


def build_parser():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--suite', choices=sorted(SUITES), default='glyphs')
    p.add_argument('--device', choices=sorted(PRESETS), default='cpu',
                   help='cpu: the configs as they are; cuda: the larger preset for a lent '
                        'GPU, twice the image size and four times the iterations')
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--rows', nargs='+', default=None,
                   help='rows to run (default: the suite\'s default rows)')
    p.add_argument('--jobs', type=int, default=1, help='training processes at a time')
    p.add_argument('--threads', type=int, default=None,
                   help='CPU threads per process (default: cores / jobs)')
    p.add_argument('--work-dir', default='work_dirs/accuracy')
    p.add_argument('--table-only', action='store_true',
                   help='train nothing: write the table from the stored runs')
    p.add_argument('--doc', default='docs/benchmarks.md')
    p.add_argument('--json', default='docs/accuracy.json')
    return p


def write_outputs(suite, preset, harness, seeds, doc, json_path, command):
    """The suite's table, picture and accuracy.json rows from stored runs."""
    # a shared row's runs (stored under the other suite's key) under this suite's
    results = harness.with_shared_runs(load_results(harness.results_path))
    grouped = bool(suite.groups)
    teacher_key = f'{harness.teacher_prefix}/teacher/0'
    table = (tables.group_table if grouped else tables.suite_table)(
        suite, results, seeds, prefix=harness.prefix,
        **({} if grouped else dict(teacher_key=teacher_key)))
    if not any(r['row'] != 'teacher' for r in table):
        return None
    image = osp.join(osp.dirname(doc), suite.image if preset.name == 'cpu'
                     else suite.image.replace('.png', f'-{preset.name}.png'))
    title = f'{harness.prefix}: mean over seeds, dots = seeds'
    if grouped:
        plots.plot_suite(table, image, title, metric='worst-group mAP')
        head = _group_head(suite, preset, harness, results, command)
        columns = tables.group_columns(suite)
    else:
        plots.plot_suite(table, image, title)
        teacher = results.get(teacher_key)
        head = (f'Produced by `{command}` on {_device(preset)}. Teacher '
                f'`{preset.config(suite.teacher)}`'
                + (f' ({teacher.get("seconds", 0) / 60:.0f} min)' if teacher else '') +
                '. mAP in points, mean ± std over seeds; Δ vs twin is the paired difference '
                '(same seed, same data order), its 95 % interval from Student\'s t; gap '
                'closed is against the student alone'
                + (f'; % of {suite.reference} is the mean as a fraction of that row\'s'
                   if suite.reference else '') + '.')
        columns = tables.table_columns(suite)
    block = head + '\n\n' + tables.format_table(table, columns) + \
        f'\n\n![{harness.prefix}]({osp.basename(image)})'
    start, end = suite.doc_markers
    if preset.name != 'cpu':
        start, end = (m.replace(':', f'-{preset.name}:') for m in (start, end))
    tables.write_markdown(doc, block, start, end)
    records = tables.accuracy_records(harness.prefix, suite.rows, results, seeds, suite.groups)
    tables.merge_accuracy_json(json_path, harness.prefix, records)
    return block


def _group_head(suite, preset, harness, results, command):
    args, _ = preset_data_args(suite, preset)
    teacher = results.get(f'{harness.prefix}/teacher/0')
    source = teacher.get('evaluates', '') if teacher else ''
    return (f'Produced by `{command}` on {_device(preset)}. Data: `python '
            f'tools/make_demo_data.py {" ".join(args)}` (a balanced validation split). '
            f'Teacher `{preset.config(suite.teacher)}`, trained on the balanced data'
            + (f' (run `{source}`)' if source else '') + ', evaluated here per group: its '
            'row is what it can give each group. mAP in points, mean ± std over seeds; the '
            'group columns are means; Δ are paired differences (same seed, same data order), '
            f'the worst group\'s with its 95 % interval from Student\'s t; Δ vs '
            f'{suite.reference} reads every row against plain KD.')


def _device(preset):
    if preset.device == 'cuda':
        import torch
        if torch.cuda.is_available():
            return torch.cuda.get_device_name(0)
    return f'this repository\'s {os.cpu_count()}-core CPU machine'


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    suite, preset = SUITES[args.suite], PRESETS[args.device]
    if preset.name not in suite.presets:
        parser.error(f'--suite {args.suite} has no configs for --device {args.device}; '
                     f'its devices: {", ".join(suite.presets)}')
    rows = args.rows or list(suite.default_rows)
    unknown = [r for r in rows if r not in suite.rows]
    if unknown:
        parser.error(f'--suite {args.suite} has no rows {unknown}; it has {list(suite.rows)}')
    missing_twins = sorted({suite.rows[r].twin for r in rows} - set(rows) - {None})
    rows += missing_twins  # a row is read against its twin: run both
    os.chdir(REPO)
    harness = Harness(suite, preset, args.work_dir, jobs=args.jobs, threads=args.threads)
    if not args.table_only:
        inputs = dict(data=harness.make_data(), pretrain=harness.pretrain())
        teacher = harness.teacher_job(inputs)
        evaluation = harness.teacher_eval_job(teacher, inputs)
        # the rows depend on the suite's pools too (the web pool), the teacher not
        row_inputs = dict(inputs, **harness.make_pools())
        harness.run([teacher] + ([evaluation] if evaluation else [])
                    + harness.row_jobs(rows, args.seeds, row_inputs, teacher))
    command = (f'python tools/benchmark_accuracy.py --suite {args.suite} --device {args.device} '
               f'--seeds {" ".join(map(str, args.seeds))}')
    block = write_outputs(suite, preset, harness, args.seeds, args.doc, args.json, command)
    if block is None:
        parser.error(f'{harness.results_path} holds no run of suite {harness.prefix}')
    print(block)
    return 0


if __name__ == '__main__':
    sys.exit(main())
