"""The main job on the built-in demo data (what `make demo` runs).

1. builds the digits data (``tools/make_demo_data.py``, reused when present);
2. trains the teacher, or reuses it when a finished run is in the work dir;
3. trains the student alone, and the student distilled with FGD;
4. exports the distilled student with its model zoo entry
   (``<work-dir>/export/metafile.yml``) and evaluates the export with
   MMDetection's own ``tools/test.py`` (no mmkd_plugins involved);
5. prints a table: teacher, student alone, distilled student.

    python tools/demo.py [--work-dir work_dirs/demo] [--iters 1500]
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from mmkd_plugins import experiment as ex  # noqa: E402

TEACHER = 'configs/demo/retinanet_r18-w32_digits.py'
STUDENT = 'configs/demo/retinanet_r18-w16_digits.py'
FGD = 'configs/fgd/fgd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py'


def run_job(name, config, work_dir, options, reuse=False):
    """Train one config (or reuse a finished run) and return its metrics."""
    done = osp.join(work_dir, 'done.json')
    if reuse and osp.isfile(done) and ex.last_checkpoint(work_dir):
        with open(done) as f:
            record = json.load(f)
        if record.get('options') == options:
            print(f'[{name}] reusing {work_dir}')
            return record['metrics']
    print(f'[{name}] training {config} ...', flush=True)
    metrics = ex.train(config, work_dir, options)
    with open(done, 'w') as f:
        json.dump({'config': config, 'options': options, 'metrics': metrics}, f, indent=2)
    print(f'[{name}] mAP {metrics["coco/bbox_mAP"]:.3f} in {metrics["train_seconds"]:.0f} s')
    return metrics


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/demo')
    parser.add_argument('--iters', type=int, default=1500,
                        help='training iterations of every job (default 1500)')
    parser.add_argument('--retrain-teacher', action='store_true')
    args = parser.parse_args()
    start = time.time()
    os.chdir(REPO)
    subprocess.check_call([sys.executable, 'tools/make_demo_data.py', '--out', 'data/digits',
                           '--train', '1000', '--val', '200', '--seed', '0'])
    options = ex.schedule_options(args.iters)
    wd = args.work_dir
    teacher = run_job('teacher', TEACHER, osp.join(wd, 'teacher'), options,
                      reuse=not args.retrain_teacher)
    teacher_ckpt = ex.last_checkpoint(osp.join(wd, 'teacher'))
    student = run_job('student', STUDENT, osp.join(wd, 'student'), options)
    fgd = run_job('fgd', FGD, osp.join(wd, 'fgd'),
                  options + [f'model.teacher_ckpt={teacher_ckpt}'])

    # As `tools/export_student.py FGD CKPT --out DIR --publish`: the weights
    # named by their hash, and the zoo entry in DIR/metafile.yml that
    # `tools/model_card.py DIR` turns into a model card.
    from mmkd_plugins.zoo.publish import publish_student
    exported = publish_student(FGD, ex.last_checkpoint(osp.join(wd, 'fgd')),
                               osp.join(wd, 'export'))
    from mmkd_plugins.experiment import mmdet_tool_path
    plain_map = ex.evaluate(exported['config'], exported['checkpoint'],
                            osp.join(wd, 'export_test'),
                            script=mmdet_tool_path('test.py'))['coco/bbox_mAP']

    rows = []
    for name, cfg, m in (('teacher R18-w32', TEACHER, teacher),
                         ('student R18-w16 alone', STUDENT, student),
                         ('student R18-w16 + FGD', FGD, fgd)):
        rows.append({'model': name, 'params (M)': f'{ex.count_parameters(cfg) / 1e6:.2f}',
                     'mAP': f'{m["coco/bbox_mAP"]:.3f}', 'mAP@50': f'{m["coco/bbox_mAP_50"]:.3f}',
                     'train s': f'{m["train_seconds"]:.0f}'})
    closed = ex.gap_closed(student['coco/bbox_mAP'], fgd['coco/bbox_mAP'], teacher['coco/bbox_mAP'])
    print('\n' + ex.format_table(rows, list(rows[0])))
    print(f'\ngap closed by FGD: {"n/a (teacher not better)" if closed is None else f"{closed:.0%}"}')
    print(f'exported student: {exported["checkpoint"]}\n'
          f'  zoo entry: {exported["metafile"]} (model card: python tools/model_card.py '
          f'{osp.dirname(exported["metafile"])})\n'
          f'  mAP through MMDetection\'s own tools/test.py: {plain_map:.3f}')
    print(f'total {time.time() - start:.0f} s')


if __name__ == '__main__':
    main()
