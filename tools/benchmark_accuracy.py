"""Accuracy of distillation on the demo data over several seeds.

Trains the teacher once, then every row's config once per seed, and writes
mean, spread and the fraction of the teacher-student gap closed into
docs/benchmarks.md (between the accuracy markers) with a plot beside it.
Finished runs are kept in ``<work-dir>/results.json`` and not repeated, so
adding a row (later methods) trains only that row.

    python tools/benchmark_accuracy.py [--seeds 0 1 2] [--iters 1500] [--rows student fgd]
"""
import argparse
import json
import os
import os.path as osp
import statistics
import subprocess
import sys

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from mmkd_plugins import experiment as ex  # noqa: E402

TEACHER = 'configs/demo/retinanet_r18-w32_digits.py'
# name -> (config, needs the teacher checkpoint). The first row is the
# student trained alone: the baseline of "gap closed".
ROWS = {
    'student': ('configs/demo/retinanet_r18-w16_digits.py', False),
    'fgd': ('configs/fgd/fgd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py', True),
}
START, END = '<!-- accuracy:start -->', '<!-- accuracy:end -->'


def load_results(path):
    if osp.isfile(path):
        with open(path) as f:
            return json.load(f)
    return {}


def summarise(results, teacher_map, rows, seeds):
    """Table rows: mean/std of mAP per row over the seeds that ran."""
    base = [results[f'student/{s}']['coco/bbox_mAP'] for s in seeds if f'student/{s}' in results]
    base_mean = statistics.mean(base) if base else None
    table = []
    for name in rows:
        maps = [results[f'{name}/{s}']['coco/bbox_mAP'] for s in seeds if f'{name}/{s}' in results]
        if not maps:
            continue
        maps50 = [results[f'{name}/{s}']['coco/bbox_mAP_50'] for s in seeds if f'{name}/{s}' in results]
        mean = statistics.mean(maps)
        std = statistics.stdev(maps) if len(maps) > 1 else 0.0
        closed = ex.gap_closed(base_mean, mean, teacher_map) if base_mean is not None else None
        table.append({'row': name, 'config': ROWS[name][0], 'seeds': len(maps),
                      'mAP mean': f'{mean:.3f}', 'mAP std': f'{std:.3f}',
                      'mAP@50 mean': f'{statistics.mean(maps50):.3f}',
                      'per seed': ' '.join(f'{m:.3f}' for m in maps),
                      'gap closed': '' if name == 'student' or closed is None else f'{closed:.0%}',
                      '_maps': maps})
    return table


def plot(table, teacher_map, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(table), 3.2))
    for i, row in enumerate(table):
        maps = row['_maps']
        ax.bar(i, statistics.mean(maps), color='#7aa6c2',
               yerr=statistics.stdev(maps) if len(maps) > 1 else 0, capsize=4)
        ax.scatter([i] * len(maps), maps, color='k', s=10, zorder=3)
    ax.axhline(teacher_map, color='#c0392b', ls='--', label=f'teacher {teacher_map:.3f}')
    ax.set_xticks(range(len(table)), [r['row'] for r in table])
    ax.set_ylabel('COCO mAP (val)')
    ax.set_title('demo digits: mean over seeds, dots = seeds')
    ax.legend(loc='lower right')
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def write_markdown(doc, block):
    text = open(doc).read() if osp.isfile(doc) else '# Benchmarks\n'
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + START + '\n' + block + '\n' + END + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + '\n\n' + START + '\n' + block + '\n' + END + '\n'
    with open(doc, 'w') as f:
        f.write(text)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--iters', type=int, default=1500)
    parser.add_argument('--rows', nargs='+', default=list(ROWS), choices=list(ROWS))
    parser.add_argument('--work-dir', default='work_dirs/accuracy')
    parser.add_argument('--doc', default='docs/benchmarks.md')
    args = parser.parse_args()
    os.chdir(REPO)
    subprocess.check_call([sys.executable, 'tools/make_demo_data.py', '--out', 'data/digits',
                           '--train', '1000', '--val', '200', '--seed', '0', '--quiet'])
    results_path = osp.join(args.work_dir, 'results.json')
    results = load_results(results_path)
    options = ex.schedule_options(args.iters)

    def run(key, config, opts):
        if key in results and results[key].get('options') == opts:
            return results[key]
        print(f'[{key}] training {config}', flush=True)
        metrics = ex.train(config, osp.join(args.work_dir, key.replace('/', '_seed')), opts)
        metrics['options'] = opts
        results[key] = metrics
        os.makedirs(args.work_dir, exist_ok=True)
        with open(results_path, 'w') as f:
            json.dump(results, f, indent=2)
        print(f'[{key}] mAP {metrics["coco/bbox_mAP"]:.3f}', flush=True)
        return metrics

    teacher = run('teacher/0', TEACHER, options + ['randomness.seed=0'])
    teacher_ckpt = ex.last_checkpoint(osp.join(args.work_dir, 'teacher_seed0'))
    rows = ['student'] + [r for r in args.rows if r != 'student']
    for seed in args.seeds:
        for name in rows:
            config, needs_teacher = ROWS[name]
            opts = options + [f'randomness.seed={seed}']
            if needs_teacher:
                opts.append(f'model.teacher_ckpt={teacher_ckpt}')
            run(f'{name}/{seed}', config, opts)

    table = summarise(results, teacher['coco/bbox_mAP'], rows, args.seeds)
    image = osp.join(osp.dirname(args.doc), 'accuracy_digits.png')
    plot(table, teacher['coco/bbox_mAP'], image)
    columns = ['row', 'config', 'seeds', 'mAP mean', 'mAP std', 'mAP@50 mean', 'per seed',
               'gap closed']
    block = (f'Teacher `{TEACHER}`: mAP {teacher["coco/bbox_mAP"]:.3f} (seed 0). '
             f'{args.iters} iterations per run, seeds {args.seeds}.\n'
             f'Produced by `python tools/benchmark_accuracy.py --seeds '
             f'{" ".join(map(str, args.seeds))} --iters {args.iters}` on this repository\'s '
             f'2-core CPU machines.\n\n'
             + ex.format_table(table, columns) +
             f'\n\n![accuracy]({osp.basename(image)})')
    write_markdown(args.doc, block)
    print(block)


if __name__ == '__main__':
    main()
