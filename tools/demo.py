"""The main job on the built-in demo data (what `make demo` runs): the
benchmark's recipe on the glyph data, one seed.

1. builds the glyph data (``tools/make_demo_data.py --dataset glyphs``,
   reused when present) and pretrains both backbones on glyph crops
   (``tools/pretrain_backbone.py``, cached in ``work_dirs/pretrain``);
2. trains the teacher (ResNet-50-style RetinaNet), the student alone, the
   student that starts from the teacher's neck convs and head
   (``inherit``) and that student distilled with FGD, seed 0 - the
   accuracy benchmark's own runs, kept in ``--runs-dir`` and reused by
   ``make accuracy`` (and the other way round);
3. exports the distilled student with its model zoo entry
   (``<work-dir>/export/metafile.yml``) and evaluates the export with
   MMDetection's own ``tools/test.py`` (no mmkd_plugins involved);
4. prints a table: teacher, student alone, inherit, FGD, and the gap closed.

    python tools/demo.py [--work-dir work_dirs/demo] [--runs-dir work_dirs/accuracy]
"""
import argparse
import os
import os.path as osp
import sys
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
sys.path.insert(0, REPO)

from mmkd_plugins import experiment as ex  # noqa: E402
from mmkd_plugins.benchmark.runs import Harness  # noqa: E402
from mmkd_plugins.benchmark.suites import PRESETS, SUITES  # noqa: E402

ROWS = ('student', 'inherit', 'fgd')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--work-dir', default='work_dirs/demo',
                        help='where the export and its test go')
    parser.add_argument('--runs-dir', default='work_dirs/accuracy',
                        help="the accuracy benchmark's work dir: runs are kept and reused there")
    args = parser.parse_args(argv)
    start = time.time()
    os.chdir(REPO)
    suite = SUITES['glyphs']
    harness = Harness(suite, PRESETS['cpu'], args.runs_dir, jobs=1)
    inputs = dict(data=harness.make_data(), pretrain=harness.pretrain())
    teacher_job = harness.teacher_job(inputs)
    runs = harness.run([teacher_job] + harness.row_jobs(list(ROWS), [0], inputs, teacher_job))

    # As `tools/export_student.py FGD CKPT --out DIR --publish`: the weights
    # named by their hash, and the zoo entry in DIR/metafile.yml that
    # `tools/model_card.py DIR` turns into a model card.
    from mmkd_plugins.zoo.publish import publish_student
    fgd_config = suite.rows['fgd'].config
    exported = publish_student(
        fgd_config, ex.last_checkpoint(osp.join(args.runs_dir, harness.prefix, 'fgd_seed0')),
        osp.join(args.work_dir, 'export'))
    plain_map = ex.evaluate(exported['config'], exported['checkpoint'],
                            osp.join(args.work_dir, 'export_test'),
                            script=ex.mmdet_tool_path('test.py'))['coco/bbox_mAP']

    teacher = runs[teacher_job.key]
    table = []
    for name, config, key in (('teacher R50-w32', suite.teacher, teacher_job.key),
                              *((f'student R18-w16, {row}', suite.rows[row].config,
                                 f'{harness.prefix}/{row}/0') for row in ROWS)):
        m = runs[key]
        table.append({'model': name, 'params (M)': f'{ex.count_parameters(config) / 1e6:.2f}',
                      'mAP': f'{100 * m["coco/bbox_mAP"]:.1f}',
                      'mAP@50': f'{100 * m["coco/bbox_mAP_50"]:.1f}',
                      'train s': f'{m["seconds"]:.0f}' if m.get('seconds') else ''})
    print('\n' + ex.format_table(table, list(table[0])))
    student = runs[f'{harness.prefix}/student/0']['coco/bbox_mAP']
    for row in ROWS[1:]:
        closed = ex.gap_closed(student, runs[f'{harness.prefix}/{row}/0']['coco/bbox_mAP'],
                               teacher['coco/bbox_mAP'])
        print(f'gap closed by {row}: {"n/a" if closed is None else f"{closed:.0%}"}')
    print(f'exported student: {exported["checkpoint"]}\n'
          f'  zoo entry: {exported["metafile"]} (model card: python tools/model_card.py '
          f'{osp.dirname(exported["metafile"])})\n'
          f'  mAP through MMDetection\'s own tools/test.py: {100 * plain_map:.1f}')
    print(f'seed 0 only: `make accuracy` runs every row over 3 seeds and reads them as '
          f'paired differences (docs/benchmarks.md). Total {time.time() - start:.0f} s')


if __name__ == '__main__':
    main()
