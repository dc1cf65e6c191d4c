"""The benchmark's suites: data, pretrained backbones, teacher and rows.

A suite is a miniature of the COCO distillation recipe: backbones
pretrained on glyph crops (:mod:`.pretrain`), a ResNet-50-style teacher
trained once, and rows, each a config trained once per seed. Every method
row names its *twin*, the row it is read against seed by seed
(:mod:`.tables`); ``student`` and ``teacher`` are the reference points of
"gap closed".

Presets scale a suite to the machine: ``cpu`` (the default; 128 px images,
the configs' own schedules) and ``cuda`` (twice the image size and four
times the iterations, for a lent GPU).
"""
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from mmkd_plugins.experiment import schedule_options  # noqa: F401 (used by the harness)

STUDENT = 'configs/benchmark/retinanet_r18-w16_glyphs.py'
TEACHER = 'configs/benchmark/retinanet_r50-w32_glyphs.py'
INHERIT = 'configs/benchmark/inherit_retinanet-r18-w16_retinanet-r50-w32_glyphs.py'
_PAIR = 'retinanet-r18-w16_retinanet-r50-w32_glyphs.py'


@dataclass(frozen=True)
class Row:
    """One row of a suite.

    Attributes:
        config (str): config path, relative to the repository.
        twin (str, optional): the row it is paired with, seed by seed.
        options (tuple[str]): extra ``--cfg-options`` of this row.
        distills (bool): whether it is a distiller config (it then gets the
            suite's teacher checkpoint as ``model.teacher_ckpt``).
        note (str): one line for the table.
        shared (str, optional): in a suite with a ``teacher_suite``, the
            row of that suite whose runs this row is (same config, data and
            teacher): they are stored, reused and trained under that row's
            key, so neither suite trains them twice.
    """
    config: str
    twin: Optional[str] = 'inherit'
    options: Tuple[str, ...] = ()
    distills: bool = True
    note: str = ''
    shared: Optional[str] = None


@dataclass(frozen=True)
class Suite:
    """Everything one table needs.

    Attributes:
        name (str): ``suite`` in ``docs/accuracy.json``.
        data (tuple[str]): arguments of ``tools/make_demo_data.py``.
        data_root (str): where that data lands (with a trailing slash).
        rows (dict): ``{name: Row}`` in table order; the first is the
            student alone.
        default_rows (tuple[str]): rows run when none are named.
        groups (tuple[str]): group names of a suite with groups.
        teacher (str): the teacher's config.
        pretrain (dict): ``{backbone config: checkpoint}``: the detector
            configs whose backbones are pretrained, and where the weights go.
        doc_markers (tuple[str, str]): where its table goes in the doc.
        image (str): the picture's file name, beside the doc.
        teacher_suite (str, optional): the suite whose teacher run this one
            uses (same teacher config, data and pretraining), instead of
            training its own.
        reference (str, optional): a row that every other row is also given
            as a fraction of (an upper bound), in the table's ``% of <row>``.
        presets (tuple[str]): the presets the suite runs under.
    """
    name: str
    data: Tuple[str, ...]
    data_root: str
    rows: Dict[str, Row]
    default_rows: Tuple[str, ...]
    groups: Tuple[str, ...] = ()
    teacher: str = TEACHER
    pretrain: Dict[str, str] = field(default_factory=lambda: {
        STUDENT: 'work_dirs/pretrain/glyphs_resnet18-w16.pth',
        TEACHER: 'work_dirs/pretrain/glyphs_resnet50-w32.pth'})
    doc_markers: Tuple[str, str] = ('<!-- glyphs:start -->', '<!-- glyphs:end -->')
    image: str = 'accuracy_glyphs.png'
    teacher_suite: Optional[str] = None
    reference: Optional[str] = None
    presets: Tuple[str, ...] = ('cpu', 'cuda')


GLYPH_ROWS = {
    'student': Row(STUDENT, twin=None, distills=False, note='student alone'),
    'inherit': Row(INHERIT, twin='student',
                   note="teacher's FPN output convs and head, no distillation loss"),
    'fgd': Row('configs/fgd/fgd_' + _PAIR, note='FGD, published RetinaNet weights'),
    'pkd': Row('configs/baselines/pkd_' + _PAIR, note='PKD, weight 6'),
    'cwd': Row('configs/baselines/cwd_' + _PAIR, note='CWD, T=1, weight 5'),
    'mse': Row('configs/baselines/mse_' + _PAIR, note='feature MSE, weight 1'),
    'kd': Row('configs/baselines/kd_' + _PAIR, note='dense logit KD, weight 2'),
    # The power check: FGD fed the teacher features of another image.
    'broken-fgd-shuffled': Row(
        'configs/benchmark/broken-fgd-shuffled_' + _PAIR, twin='fgd',
        note='power check: FGD on the teacher features of another image of the batch'),
}

_DATA_FREE = 'configs/data_free/{}_' + _PAIR

# Data-free distillation (docs/data_free.md): no glyph image or box reaches
# the student; validation is on the real glyph images. Every row starts as
# the inherit row does (glyph-crop-pretrained backbone, the teacher's FPN
# output convs and head), so the rows differ only in what the student
# learns from afterwards.
DATA_FREE_ROWS = {
    'real-data-student': Row(
        INHERIT, twin=None, shared='inherit',
        note='upper bound: the same initialisation, trained on the real glyph images '
             "(the glyph suite's inherit runs)"),
    'noise-kd': Row(_DATA_FREE.format('noise-kd'), twin=None,
                    note='lower bound: the student loss on Gaussian-noise images'),
    'no-filter': Row(_DATA_FREE.format('no-filter'), twin=None,
                     note='the generator, every image kept'),
    'ta-dfkd': Row(_DATA_FREE.format('ta-dfkd'), twin='no-filter',
                   note='the generator and the lenient filter'),
    'ta-dfkd-kl': Row(_DATA_FREE.format('ta-dfkd-kl'), twin='ta-dfkd',
                      note='binary KL on the class logits instead of L1'),
}

SUITES = {
    'glyphs': Suite(
        name='glyphs', data=('--dataset', 'glyphs', '--out', 'data/glyphs'),
        data_root='data/glyphs/', rows=GLYPH_ROWS,
        default_rows=('student', 'inherit', 'fgd', 'pkd', 'cwd', 'mse', 'kd',
                      'broken-fgd-shuffled')),
    'data-free': Suite(
        name='data-free', data=('--dataset', 'glyphs', '--out', 'data/glyphs'),
        data_root='data/glyphs/', rows=DATA_FREE_ROWS,
        # ta-dfkd and its twin fit the CPU budget (6 runs over 3 seeds); the
        # upper bound reuses the glyph suite's inherit runs; noise-kd (the
        # lower bound) and ta-dfkd-kl are run by naming them.
        default_rows=('real-data-student', 'no-filter', 'ta-dfkd'),
        teacher_suite='glyphs', reference='real-data-student', presets=('cpu', ),
        doc_markers=('<!-- data-free:start -->', '<!-- data-free:end -->'),
        image='accuracy_data_free.png'),
}


@dataclass(frozen=True)
class Preset:
    """How a suite is scaled to a machine.

    Attributes:
        name (str): ``cpu`` or ``cuda``.
        image_scale (int): multiplies the image size and glyph heights;
            other than 1, the detector configs are swapped for their
            ``-x<scale>`` twins (``configs/benchmark/*_glyphs-x2.py``).
        iters_scale (int): multiplies every schedule.
        device (str): where training runs.
    """
    name: str
    image_scale: int = 1
    iters_scale: int = 1
    device: str = 'cpu'

    def config(self, path: str) -> str:
        """The preset's version of a benchmark detector config."""
        if self.image_scale == 1 or not path.startswith('configs/benchmark/retinanet_'):
            return path
        return path[:-len('.py')] + f'-x{self.image_scale}.py'


PRESETS = {'cpu': Preset('cpu'), 'cuda': Preset('cuda', image_scale=2, iters_scale=4,
                                                device='cuda')}


def preset_data_args(suite: Suite, preset: Preset) -> Tuple[List[str], str]:
    """``make_demo_data.py`` arguments and data root of ``suite`` under
    ``preset`` (a scaled preset writes its own folder)."""
    if preset.image_scale == 1:
        return list(suite.data), suite.data_root
    root = suite.data_root.rstrip('/') + f'-x{preset.image_scale}/'
    args = list(suite.data)
    args[args.index('--out') + 1] = root.rstrip('/')
    args += ['--size', str(128 * preset.image_scale),
             '--scale-range', str(12 * preset.image_scale), str(64 * preset.image_scale)]
    return args, root


def preset_options(suite: Suite, preset: Preset, row: Row) -> List[str]:
    """``--cfg-options`` that move a distiller ``row`` onto the preset's
    student, teacher and data (a detector row's config is swapped whole,
    see :meth:`Preset.config`)."""
    if preset.image_scale == 1 or not row.distills:
        return []
    student = preset.config(STUDENT)
    opts = [f'model.student={student}', f'model.teacher={preset.config(suite.teacher)}']
    # The distiller config's data come from the 128 px student it inherits.
    _, root = preset_data_args(suite, preset)
    side = 128 * preset.image_scale
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts.append(f'{loader}.dataset.data_root={root}')
    return opts + [f'val_evaluator.ann_file={root}annotations/val.json',
                   f'test_evaluator.ann_file={root}annotations/val.json',
                   f'train_dataloader.dataset.pipeline.2.scale=({side},{side})',
                   f'val_dataloader.dataset.pipeline.1.scale=({side},{side})',
                   f'test_dataloader.dataset.pipeline.1.scale=({side},{side})']
