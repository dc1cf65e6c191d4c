#!/usr/bin/env python
"""Accuracy benchmark: a miniature of the COCO distillation recipe, rows as
paired differences to their twins.

    python tools/benchmark_accuracy.py [--suite glyphs] [--seeds 0 1 2] \
        [--rows student inherit fgd ...] [--jobs 2] [--device cpu|cuda]
    python tools/benchmark_accuracy.py --table-only     # tables from stored runs

It makes the suite's data (``tools/make_demo_data.py``), pretrains the
backbones on glyph crops (``tools/pretrain_backbone.py``), trains the
teacher once, then every row once per seed, and writes the table into
``docs/benchmarks.md`` (between the suite's markers), the rows into
``docs/accuracy.json`` and a picture beside the doc. Finished runs are kept
in ``<work-dir>/results.json`` and reused while their options and inputs
(pretrained weights, teacher checkpoint, data) are unchanged; see
``mmkd_plugins/benchmark/``.
"""
import argparse
import os
import os.path as osp
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from mmkd_plugins.benchmark import plots, tables  # noqa: E402
from mmkd_plugins.benchmark.runs import Harness, load_results  # noqa: E402
from mmkd_plugins.benchmark.suites import PRESETS, SUITES  # noqa: E402


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
    results = harness.with_shared_runs(load_results(harness.results_path))
    table = tables.suite_table(suite, results, seeds, prefix=harness.prefix,
                               teacher_prefix=harness.teacher_prefix)
    if not table:
        return None
    image = osp.join(osp.dirname(doc), suite.image if preset.name == 'cpu'
                     else suite.image.replace('.png', f'-{preset.name}.png'))
    plots.plot_suite(table, image, f'{harness.prefix}: mean over seeds, dots = seeds')
    teacher = results.get(f'{harness.teacher_prefix}/teacher/0')
    head = (f'Produced by `{command}` on {_device(preset)}. Teacher '
            f'`{preset.config(suite.teacher)}`'
            + (f' ({teacher.get("seconds", 0) / 60:.0f} min)' if teacher else '') +
            '. mAP in points, mean ± std over seeds; Δ vs twin is the paired difference '
            '(same seed, same data order), its 95 % interval from Student\'s t; gap closed '
            'is against the student alone.')
    block = head + '\n\n' + tables.format_table(table, tables.table_columns(suite)) + \
        f'\n\n![{harness.prefix}]({osp.basename(image)})'
    start, end = suite.doc_markers
    if preset.name != 'cpu':
        start, end = (m.replace(':', f'-{preset.name}:') for m in (start, end))
    tables.write_markdown(doc, block, start, end)
    records = tables.accuracy_records(harness.prefix, suite.rows, results, seeds, suite.groups)
    tables.merge_accuracy_json(json_path, harness.prefix, records)
    return block


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
    rows = args.rows or list(suite.default_rows)
    unknown = [r for r in rows if r not in suite.rows]
    if unknown:
        parser.error(f'--suite {args.suite} has no rows {unknown}; it has {list(suite.rows)}')
    if args.device not in suite.presets:
        parser.error(f'--suite {args.suite} runs only with --device {" or ".join(suite.presets)}')
    missing_twins = sorted({suite.rows[r].twin for r in rows} - set(rows) - {None})
    rows += missing_twins  # a row is read against its twin: run both
    os.chdir(REPO)
    harness = Harness(suite, preset, args.work_dir, jobs=args.jobs, threads=args.threads)
    if not args.table_only:
        inputs = dict(data=harness.make_data(), pretrain=harness.pretrain())
        teacher = harness.teacher_job(inputs)
        harness.run([teacher] + harness.row_jobs(rows, args.seeds, inputs, teacher))
    command = (f'python tools/benchmark_accuracy.py --suite {args.suite} --device {args.device} '
               f'--seeds {" ".join(map(str, args.seeds))}')
    block = write_outputs(suite, preset, harness, args.seeds, args.doc, args.json, command)
    if block is None:
        parser.error(f'{harness.results_path} holds no run of suite {harness.prefix}')
    print(block)
    return 0


if __name__ == '__main__':
    sys.exit(main())
