"""Accuracy of distillation on the demo data over several seeds.

Trains the teacher once, then every row's config once per seed, and writes
mean, spread and the fraction of the teacher-student gap closed into
docs/benchmarks.md (between the accuracy markers) with a plot beside it.
Finished runs are kept in ``<work-dir>/results.json`` and not repeated, so
adding a row (later methods) trains only that row.

    python tools/benchmark_accuracy.py [--seeds 0 1 2] [--iters 1500] [--rows student fgd]

``--suite group`` runs the group-robustness rows instead (``GROUP_ROWS``:
student alone, FGD KD and group-DRO FGD KD on the group-imbalanced digits,
whose training split has 5 % 'photo' images) and writes worst-group and
mean-over-groups mAP between the group markers. Its teacher is the same
one, trained on the balanced demo data; it is also evaluated per group.

    python tools/benchmark_accuracy.py --suite group [--seeds 0 1 2] [--iters 1500]
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
_UET = 'configs/uet/uet-fgd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py'
_UET_MODE = 'model.distill_losses.loss_fgd.loss.mode='
# name -> (config, needs the teacher checkpoint, extra --cfg-options). The
# first row is the student trained alone: the baseline of "gap closed".
ROWS = {
    'student': ('configs/demo/retinanet_r18-w16_digits.py', False, []),
    'fgd': ('configs/fgd/fgd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py', True, []),
    # UET's three modes (docs/uet.md); 'weight' is the config as shipped.
    'fgd-uet': (_UET, True, []),
    'fgd-uet-residual': (_UET, True, [_UET_MODE + 'residual']),
    # 'mean' replaces the target by the MC mean, so the passes must run at the
    # teacher's resolution (scale=1; the shipped config uses 0.5).
    'fgd-uet-mean': (_UET, True, [_UET_MODE + 'mean',
                                  'model.distill_losses.loss_fgd.mc_dropout.scale=1.0']),
    # Weight mode on U relative to the teacher activation (docs/uet.md, "Measured
    # on the demo": absolute U is largest on the digits).
    'fgd-uet-relative': (_UET, True, ['model.distill_losses.loss_fgd.loss.uncertainty=relative']),
    # Cross-view consistency (configs/cross_view/, docs/cross_view.md) and its
    # single-view logit-KD baseline.
    'logit-kd': ('configs/cross_view/kd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py',
                 True, []),
    'crld': ('configs/cross_view/crld_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py',
             True, []),
    'crld-fgd': ('configs/cross_view/crld-fgd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py',
                 True, []),
    # Ablations of CRLD + FGD (configs/cross_view/README.md): FGD beside
    # single-view logit KD, and FGD at a tenth of its weight. At initialisation
    # FGD's gradient on the student is ~12, the box loss's ~0.6 and the logit
    # terms' ~0.04; at 0.01 it is ~1.2.
    'kd-fgd': ('configs/cross_view/kd-fgd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py',
               True, []),
    'crld-fgd-light': ('configs/cross_view/crld-fgd_retinanet-r18-w16_retinanet-r18-w32_'
                       '1500i_digits.py', True,
                       ['model.distill_losses.loss_fgd.loss.loss_weight=0.01']),
}
START, END = '<!-- accuracy:start -->', '<!-- accuracy:end -->'

# --suite group: the group-imbalanced data (see configs/group_dro/README.md).
GROUP_DATA = ['--out', 'data/digits_imbalanced', '--train', '1000', '--val', '200',
              '--seed', '0', '--style-probs',
              'train:plain=0.45,gradient=0.3,texture=0.2,photo=0.05']
_DRO = ('configs/group_dro/group-dro-kd_retinanet-r18-w16_retinanet-r18-w32_'
        '1500i_digits-imbalanced.py')
# name -> (config, needs the teacher checkpoint, extra --cfg-options).
GROUP_ROWS = {
    'student': ('configs/group_dro/retinanet_r18-w16_1500i_digits-imbalanced.py', False, []),
    'kd': ('configs/group_dro/kd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits-imbalanced.py',
           True, []),
    'group-dro-kd': (_DRO, True, []),
    # Ablation: the first implementation, whole student per group
    # (shared_features=False), so BatchNorm normalises each group's images
    # by their own statistics in training but not at test time.
    'group-dro-kd-subbatch': (_DRO, True, ['model.shared_features=False']),
    # Group DRO with group-balanced batches (GroupBalancedSampler), and plain
    # KD with the same sampler to separate the sampler's effect.
    'group-dro-kd-balanced': (_DRO.replace('group-dro-kd_', 'group-dro-kd-balanced_'), True, []),
    'kd-balanced': ('configs/group_dro/kd_retinanet-r18-w16_retinanet-r18-w32_1500i_'
                    'digits-imbalanced.py', True,
                    ['train_dataloader.sampler.type=GroupBalancedSampler']),
    # Ablation, not run by default (--rows ... uniform-group-kd): group DRO with
    # weights that never move, i.e. the mean over present groups of the group
    # losses on per-group sub-batches. It separates the DRO weights' effect
    # from that of the group split itself (sub-batch BatchNorm statistics,
    # minority images weighted up by the group mean).
    'uniform-group-kd': (_DRO, True, ['model.step_size=1e-12']),
}
GROUP_DEFAULT_ROWS = ['student', 'kd', 'group-dro-kd']
GROUP_NAMES = ('plain', 'gradient', 'texture', 'photo')  # table order
# The balanced-data teacher, evaluated per group on the imbalanced data's
# validation split (the same images as data/digits').
GROUP_TEACHER_EVAL = [
    'test_dataloader.dataset.data_root=data/digits_imbalanced/',
    'test_evaluator.type=GroupCocoMetric',
    'test_evaluator.ann_file=data/digits_imbalanced/annotations/val.json',
]
GROUP_START, GROUP_END = '<!-- group-accuracy:start -->', '<!-- group-accuracy:end -->'


def load_results(path):
    if osp.isfile(path):
        with open(path) as f:
            return json.load(f)
    return {}


def save_result(path, key, metrics):
    """Add one run to the results file under a lock, re-reading it first:
    two suites (e.g. ``--suite demo`` and ``--suite group``) may run side by
    side on the same work dir without losing each other's runs."""
    import fcntl
    os.makedirs(osp.dirname(path) or '.', exist_ok=True)
    with open(path + '.lock', 'w') as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        merged = load_results(path)
        merged[key] = metrics
        tmp = path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(merged, f, indent=2)
        os.replace(tmp, path)


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
        table.append({'row': name, 'config': _row_config(ROWS[name]), 'seeds': len(maps),
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


def _mean_std(values, digits=3):
    mean = statistics.mean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f'{mean:.{digits}f} ± {std:.{digits}f}'


def summarise_group(results, rows, seeds, teacher=None):
    """Group-suite table rows: overall, worst-group and mean-group mAP (mean
    ± std over seeds), each group's mean mAP, and the worst group per seed."""
    table = []
    entries = ([('teacher (balanced data)', TEACHER, [teacher])] if teacher else []) + [
        (name, _row_config(GROUP_ROWS[name]),
         [results[f'group-{name}/{s}'] for s in seeds if f'group-{name}/{s}' in results])
        for name in rows]
    for name, config, runs in entries:
        if not runs:
            continue
        row = {'row': name, 'config': config, 'seeds': len(runs),
               'mAP': _mean_std([r['coco/bbox_mAP'] for r in runs]),
               'worst-group mAP': _mean_std([r['group/worst_bbox_mAP'] for r in runs]),
               'mean-group mAP': _mean_std([r['group/mean_bbox_mAP'] for r in runs]),
               'worst group per seed': ' '.join(_worst_name(r) for r in runs)}
        for g in GROUP_NAMES:
            key = f'group/{g}/bbox_mAP'
            row[g] = f'{statistics.mean(r[key] for r in runs):.3f}' \
                if all(key in r for r in runs) else ''
        table.append(row)
    return table


def _worst_name(metrics):
    # GroupCocoMetric's worst_group indexes the sorted group names.
    return sorted(GROUP_NAMES)[int(metrics['group/worst_group'])]


def plot_group(table, path):
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(2.0 + 1.6 * len(table), 3.2))
    width = 0.8 / len(GROUP_NAMES)
    for j, g in enumerate(GROUP_NAMES):
        xs = [i + (j - (len(GROUP_NAMES) - 1) / 2) * width for i in range(len(table))]
        ax.bar(xs, [float(r[g] or 0) for r in table], width, label=g)
    ax.set_xticks(range(len(table)), [r['row'] for r in table])
    ax.set_ylabel('COCO mAP per group (val)')
    ax.set_title('imbalanced digits (train: 5 % photo): mean over seeds')
    ax.legend(loc='upper left', bbox_to_anchor=(1.0, 1.0), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def _row_config(row) -> str:
    """A ``(config, needs_teacher, extra options)`` row as the table shows it."""
    config, _, extra = row
    return ' '.join([config, *extra])


def _stored_rows(results, rows, seeds, prefix=''):
    """The names of ``rows`` with a stored run for any of ``seeds``."""
    return [r for r in rows if any(f'{prefix}{r}/{s}' in results for s in seeds)]


def _rows_flag(shown, default):
    """`` --rows a b`` when the table's rows are not the suite's default."""
    return '' if list(shown) == list(default) else ' --rows ' + ' '.join(shown)


def write_markdown(doc, block, start=START, end=END):
    text = open(doc).read() if osp.isfile(doc) else '# Benchmarks\n'
    if start in text and end in text:
        head, rest = text.split(start, 1)
        text = head + start + '\n' + block + '\n' + end + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + '\n\n' + start + '\n' + block + '\n' + end + '\n'
    with open(doc, 'w') as f:
        f.write(text)


def make_data(suite):
    """The demo data (and for ``suite='group'`` the imbalanced data);
    make_demo_data.py does nothing when they exist with these settings."""
    subprocess.check_call([sys.executable, 'tools/make_demo_data.py', '--out', 'data/digits',
                           '--train', '1000', '--val', '200', '--seed', '0', '--quiet'])
    if suite == 'group':
        subprocess.check_call([sys.executable, 'tools/make_demo_data.py', *GROUP_DATA,
                               '--quiet'])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--iters', type=int, default=1500)
    parser.add_argument('--suite', choices=['demo', 'group'], default='demo',
                        help='demo: ROWS on the demo data; group: GROUP_ROWS on the '
                             'group-imbalanced data')
    parser.add_argument('--rows', nargs='+', default=None,
                        help=f'rows to run (demo: {list(ROWS)}; group: {list(GROUP_ROWS)})')
    parser.add_argument('--work-dir', default='work_dirs/accuracy')
    parser.add_argument('--table-only', action='store_true',
                        help='train nothing: write the tables from the runs in the results '
                             'file (every row with results for --seeds)')
    parser.add_argument('--doc', default='docs/benchmarks.md')
    args = parser.parse_args(argv)
    suite_rows = GROUP_ROWS if args.suite == 'group' else ROWS
    args.rows = args.rows or (GROUP_DEFAULT_ROWS if args.suite == 'group' else list(ROWS))
    unknown = [r for r in args.rows if r not in suite_rows]
    if unknown:
        parser.error(f'--suite {args.suite} has no rows {unknown}; it has {list(suite_rows)}')
    os.chdir(REPO)
    if not args.table_only:
        make_data(args.suite)
    results_path = osp.join(args.work_dir, 'results.json')
    results = load_results(results_path)
    options = ex.schedule_options(args.iters)

    def run(key, config, opts):
        results.update(load_results(results_path))  # another suite may have run it
        if key in results and results[key].get('options') == opts:
            return results[key]
        if args.table_only:
            return results.get(key)
        print(f'[{key}] training {config}', flush=True)
        metrics = ex.train(config, osp.join(args.work_dir, key.replace('/', '_seed')), opts)
        metrics['options'] = opts
        results[key] = metrics
        save_result(results_path, key, metrics)
        print(f'[{key}] mAP {metrics["coco/bbox_mAP"]:.3f}', flush=True)
        return metrics

    teacher = run('teacher/0', TEACHER, options + ['randomness.seed=0'])
    if teacher is None:
        parser.error(f'--table-only: {results_path} holds no teacher run')
    teacher_ckpt = (None if args.table_only else
                    ex.last_checkpoint(osp.join(args.work_dir, 'teacher_seed0')))
    if args.suite == 'group':
        run_group_suite(args, results, results_path, run, options, teacher_ckpt)
        return
    rows = ['student'] + [r for r in args.rows if r != 'student']
    for seed in args.seeds:
        for name in rows:
            config, needs_teacher, extra = ROWS[name]
            opts = options + [f'randomness.seed={seed}'] + extra
            if needs_teacher:
                opts.append(f'model.teacher_ckpt={teacher_ckpt}')
            run(f'{name}/{seed}', config, opts)

    # Every row with results for these seeds, not only this run's: runs of
    # different row sets (one per method) fill one table.
    shown = _stored_rows(results, ROWS, args.seeds)
    table = summarise(results, teacher['coco/bbox_mAP'], shown, args.seeds)
    image = osp.join(osp.dirname(args.doc), 'accuracy_digits.png')
    plot(table, teacher['coco/bbox_mAP'], image)
    columns = ['row', 'config', 'seeds', 'mAP mean', 'mAP std', 'mAP@50 mean', 'per seed',
               'gap closed']
    block = (f'Teacher `{TEACHER}`: mAP {teacher["coco/bbox_mAP"]:.3f} (seed 0). '
             f'{args.iters} iterations per run, seeds {args.seeds}.\n'
             f'Produced by `python tools/benchmark_accuracy.py --seeds '
             f'{" ".join(map(str, args.seeds))} --iters {args.iters}'
             f'{_rows_flag(shown, list(ROWS))}` on this repository\'s '
             f'2-core CPU machines.\n\n'
             + ex.format_table(table, columns) +
             f'\n\n![accuracy]({osp.basename(image)})')
    write_markdown(args.doc, block)
    print(block)


def run_group_suite(args, results, results_path, run, options, teacher_ckpt):
    """GROUP_ROWS over the seeds, the teacher evaluated per group, and the
    table between the group markers of the doc."""
    key = 'group-teacher-eval/0'
    if results.get(key, {}).get('checkpoint') != teacher_ckpt and not args.table_only:
        print(f'[{key}] evaluating {teacher_ckpt} per group', flush=True)
        metrics = ex.evaluate(TEACHER, teacher_ckpt, osp.join(args.work_dir, 'group_teacher_eval'),
                              GROUP_TEACHER_EVAL)
        results[key] = dict(metrics, checkpoint=teacher_ckpt)
        save_result(results_path, key, results[key])
    for seed in args.seeds:
        for name in args.rows:
            config, needs_teacher, extra = GROUP_ROWS[name]
            opts = options + [f'randomness.seed={seed}'] + extra
            if needs_teacher:
                opts.append(f'model.teacher_ckpt={teacher_ckpt}')
            metrics = run(f'group-{name}/{seed}', config, opts)
            if metrics is None:  # --table-only
                continue
            print(f'[group-{name}/{seed}] worst group {_worst_name(metrics)} '
                  f'{metrics["group/worst_bbox_mAP"]:.3f}, mean over groups '
                  f'{metrics["group/mean_bbox_mAP"]:.3f}', flush=True)

    # Every row with results for these seeds (ablations run separately too).
    shown = _stored_rows(results, GROUP_ROWS, args.seeds, prefix='group-')
    table = summarise_group(results, shown, args.seeds, results.get(key))
    image = osp.join(osp.dirname(args.doc), 'accuracy_digits_groups.png')
    plot_group(table, image)
    columns = ['row', 'config', 'seeds', 'mAP', 'worst-group mAP', 'mean-group mAP',
               *GROUP_NAMES, 'worst group per seed']
    block = (f'Data: `python tools/make_demo_data.py {" ".join(GROUP_DATA)}` (training: '
             '450 plain / 300 gradient / 200 texture / 50 photo images; validation: 50 of '
             'each). Teacher `' + TEACHER + '` trained on the balanced demo data '
             f'(seed 0), evaluated on the same validation images. {args.iters} iterations '
             f'per run, seeds {args.seeds}; mAP columns are mean ± std over seeds, group '
             'columns the mean.\n'
             f'Produced by `python tools/benchmark_accuracy.py --suite group --seeds '
             f'{" ".join(map(str, args.seeds))} --iters {args.iters}'
             f'{_rows_flag(shown, GROUP_DEFAULT_ROWS)}` on this repository\'s '
             f'2-core CPU machines.\n\n'
             + ex.format_table(table, columns) +
             f'\n\n![per-group accuracy]({osp.basename(image)})')
    write_markdown(args.doc, block, GROUP_START, GROUP_END)
    print(block)


if __name__ == '__main__':
    main()
