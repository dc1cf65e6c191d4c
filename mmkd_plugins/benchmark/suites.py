"""The benchmark's suites: data, pretrained backbones, teacher and rows.

A suite is a miniature of the COCO distillation recipe: backbones
pretrained on glyph crops (:mod:`.pretrain`), a ResNet-50-style teacher
trained once, and rows, each a config trained once per seed. Every method
row names its *twin*, the row it is read against seed by seed
(:mod:`.tables`); ``student`` and ``teacher`` are the reference points of
"gap closed".

Suites: ``glyphs``, the methods on the glyph data; ``group``, group-robust
distillation on a group-imbalanced version of it (5 % 'photo' backgrounds
in training, a balanced validation split), distilling from the ``glyphs``
suite's teacher (trained on the balanced data), which it evaluates per
group on its own validation split; ``webly``, KD^3 on an unlabelled web
pool; ``data-free``, TA-DFKD on generated images, whose upper bound is the
glyph suite's inherit runs (a ``shared`` row).

Presets scale a suite to the machine: ``cpu`` (the default; 128 px images,
the configs' own schedules) and ``cuda`` (twice the image size and four
times the iterations, for a lent GPU).
"""
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

from mmkd_plugins.experiment import schedule_options

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
        iters (int, optional): training iterations under the ``cpu``
            preset, the cosine schedule compressed to them (early stopping);
            default: the config's.
        shared (str, optional): in a suite with a ``teacher_suite`` (and
            the same data), the row of that suite whose runs this row is
            (same config, options, data and teacher): they are stored,
            reused and trained under that suite's key, so neither suite
            trains them twice. This suite's further pools (the web pool)
            are not inputs of such a row: it reads none of them.
    """
    config: str
    twin: Optional[str] = 'inherit'
    options: Tuple[str, ...] = ()
    distills: bool = True
    note: str = ''
    iters: Optional[int] = None
    shared: Optional[str] = None

    @property
    def cfg_options(self) -> Tuple[str, ...]:
        """Everything the row changes in its config under the ``cpu``
        preset: its options, and the schedule when it sets ``iters``."""
        return tuple(schedule_options(self.iters) if self.iters else ()) + self.options


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
        pools (tuple[tuple[str]]): ``tools/make_demo_data.py`` arguments of
            further data the rows train on besides ``data`` (the webly
            suite's unlabelled web pool); they are inputs of the rows, not of
            the teacher.
        teacher_suite (str, optional): the suite whose teacher run (and
            data) this suite distils from, instead of training its own; the
            teacher is then evaluated on this suite's validation split.
        presets (tuple[str]): the presets the suite has configs for.
        reference (str, optional): a row every row is also read against:
            paired differences in a group suite's table (e.g. plain KD, the
            bar a group-robust method must clear), a ``% of <row>`` column in
            the others' (e.g. the data-free suite's real-data upper bound).
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
    pools: Tuple[Tuple[str, ...], ...] = ()
    teacher_suite: Optional[str] = None
    presets: Tuple[str, ...] = ('cpu', 'cuda')
    reference: Optional[str] = None


GLYPH_ROWS = {
    'student': Row(STUDENT, twin=None, distills=False, note='student alone'),
    'inherit': Row(INHERIT, twin='student',
                   note="teacher's FPN output convs and head, no distillation loss"),
    'fgd': Row('configs/fgd/fgd_' + _PAIR, note='FGD, published RetinaNet weights'),
    'pkd': Row('configs/baselines/pkd_' + _PAIR, note='PKD, weight 6'),
    'cwd': Row('configs/baselines/cwd_' + _PAIR, note='CWD, T=1, weight 5'),
    'mse': Row('configs/baselines/mse_' + _PAIR, note='feature MSE, weight 1'),
    'kd': Row('configs/baselines/kd_' + _PAIR, note='dense logit KD, weight 2'),
    # UET (docs/uet.md): one row per variant of configs/_base_/distill/uet.py,
    # each read against the host it wraps. Only the paper's form on FGD and
    # on a second host are default rows (CPU time); the others run by name.
    'uet-add': Row('configs/uet/uet-add-fgd_' + _PAIR, twin='fgd',
                   note="FGD+UET, the paper's form: target F + U, MC dropout before the "
                        "teacher's last backbone stage"),
    'uet-weight': Row('configs/uet/uet-weight-fgd_' + _PAIR, twin='fgd',
                      note='FGD+UET weight mode: terms weighted by exp(-minmax U), same passes'),
    'uet-head': Row('configs/uet/uet-head-fgd_' + _PAIR, twin='fgd',
                    note="FGD+UET weight mode, MC dropout before the teacher's dense head"),
    'uet-add-pkd': Row('configs/uet/uet-add-pkd_' + _PAIR, twin='pkd',
                       note="PKD+UET, the paper's form on a second host"),
    # The power check: FGD fed the teacher features of another image.
    'broken-fgd-shuffled': Row(
        'configs/benchmark/broken-fgd-shuffled_' + _PAIR, twin='fgd',
        note='power check: FGD on the teacher features of another image of the batch'),
}

_WEB = 'configs/webly/{}_retinanet-r18-w16_retinanet-r50-w32_glyphs-web.py'
# KD^3 (issue 15, docs/webly.md): the student learns from an unlabelled web
# pool of the glyphs (other renderings, other backgrounds, 25 % irrelevant
# images) and never sees the target training images; every row is scored on
# the target validation split with the glyph suite's teacher.
WEBLY_ROWS = {
    'student': Row(STUDENT, twin=None, distills=False, shared='student',
                   note="student alone, trained on the labelled target data (the glyph "
                        "suite's student runs)"),
    'target-student': Row(
        INHERIT, twin='student', shared='inherit',
        note="upper bound: the labelled target data, the teacher's FPN output convs and "
             "head, no distillation loss (the glyph suite's inherit runs)"),
    'web-kd': Row(_WEB.format('web-kd'), twin='target-student',
                  note='dense KD (class and box maps) on the whole web pool'),
    'kd3': Row(_WEB.format('kd3'), twin='web-kd',
               note='KD^3: selection, head alignment, weighted feature alignment, '
                    'MixDistribution, on top of web-kd'),
    'kd3-no-selection': Row(_WEB.format('kd3-no-selection'), twin='kd3',
                            note='KD^3 without the dynamic selection'),
    'kd3-no-mixdist': Row(_WEB.format('kd3-no-mixdist'), twin='kd3',
                          note='KD^3 without MixDistribution'),
    'kd3-no-head-align': Row(_WEB.format('kd3-no-head-align'), twin='kd3',
                             note="KD^3 without head alignment (the student's own head)"),
    'broken-web-kd-shuffled': Row(
        _WEB.format('broken-web-kd-shuffled'), twin='web-kd',
        note="power check: web-kd on the teacher's maps of another image of the batch"),
}

GROUPS = ('plain', 'gradient', 'texture', 'photo')
_GROUP = 'configs/group_dro/'
_GROUP_PAIR = 'retinanet-r18-w16_retinanet-r50-w32_glyphs-imbalanced.py'
_DRO = _GROUP + 'group-dro-kd_' + _GROUP_PAIR
#: Strong regularisation (Sagawa et al.): ten times the recipe's AdamW weight decay.
STRONG_WD = 'optim_wrapper.optimizer.weight_decay=0.5'
#: Early stopping: the recipe's 1200 iterations cut to half, cosine and all.
EARLY_ITERS = 600


def _dro(twin: str = 'group-dro-kd', note: str = '', **objective) -> Row:
    """A variant of the group-DRO row: its config with ``model.objective``
    arguments changed."""
    options = tuple(f'model.objective.{k}={v}' for k, v in objective.items())
    return Row(_DRO, twin=twin, options=options, note=note)


GROUP_ROWS = {
    'student': Row(_GROUP + 'retinanet_r18-w16_glyphs-imbalanced.py', twin=None, distills=False,
                   note='student alone, imbalanced data'),
    # The baselines: plain KD, and the two simple answers to a rare group.
    'kd': Row(_GROUP + 'kd_' + _GROUP_PAIR, twin='student',
              note="plain KD: FGD (the glyph suite's fgd row) on the imbalanced data"),
    'logit-kd': Row(_GROUP + 'logit-kd_' + _GROUP_PAIR, twin='kd',
                    note="plain KD by dense logit KD (the glyph suite's kd row)"),
    'kd-balanced': Row(_GROUP + 'kd-balanced_' + _GROUP_PAIR, twin='kd',
                       note='plain KD, group-balanced batches (GroupBalancedSampler)'),
    'kd-reweighted': Row(_GROUP + 'kd-reweighted_' + _GROUP_PAIR, twin='kd',
                         note='plain KD, image losses weighted by 1/n_g (GroupReweighted)'),
    'group-dro-kd': Row(_DRO, twin='kd',
                        note='group DRO over FGD: EG on the detection loss, eta 0.01'),
    # What the weights follow.
    'group-dro-kd-sum': _dro(signal='sum', note='signal: detection + distillation (the old one)'),
    'group-dro-kd-distill': _dro(signal='distillation', note='signal: distillation loss'),
    'group-dro-kd-std': _dro(signal='standardised', note='signal: z-scores of both terms'),
    # Step size; at 1e-12 q stays uniform: every present group weighs the
    # same, which separates what q's movement does from what the split does.
    'group-dro-kd-uniform': _dro(step_size=1e-12, note='q frozen uniform (eta 1e-12)'),
    'group-dro-kd-eta0.1': _dro(step_size=0.1, note='eta 0.1'),
    'group-dro-kd-eta1': _dro(step_size=1.0, note='eta 1'),
    # Sagawa et al.'s remedies: the group adjustment, strong regularisation, early stopping.
    'group-dro-kd-adj2': _dro(adjustment=2.0, note='adjustment 2/sqrt(n_g)'),
    'group-dro-kd-eta0.1-adj2': _dro(twin='group-dro-kd-eta0.1', step_size=0.1, adjustment=2.0,
                                     note='eta 0.1, adjustment 2/sqrt(n_g)'),
    'group-dro-kd-wd': Row(_DRO, twin='group-dro-kd', options=(STRONG_WD, ),
                           note='weight decay 0.5 (10x)'),
    'kd-wd': Row(_GROUP + 'kd_' + _GROUP_PAIR, twin='kd', options=(STRONG_WD, ),
                 note='plain KD, weight decay 0.5 (10x)'),
    'group-dro-kd-early': Row(_DRO, twin='group-dro-kd', iters=EARLY_ITERS,
                              note=f'{EARLY_ITERS} iterations'),
    'kd-early': Row(_GROUP + 'kd_' + _GROUP_PAIR, twin='kd', iters=EARLY_ITERS,
                    note=f'plain KD, {EARLY_ITERS} iterations'),
    # Sagawa et al.'s setting (balanced batches), and DRO over the other plain KD.
    'group-dro-kd-balanced': Row(_GROUP + 'group-dro-kd-balanced_' + _GROUP_PAIR,
                                 twin='group-dro-kd', note='group DRO, group-balanced batches'),
    'group-dro-logit-kd': Row(_GROUP + 'group-dro-logit-kd_' + _GROUP_PAIR, twin='logit-kd',
                              note='group DRO over logit KD'),
    # The power check: the weights pushed towards the best groups, at the
    # step size where they move most.
    'broken-group-dro-kd-inverted': Row(
        _GROUP + 'broken-group-dro-kd-inverted_' + _GROUP_PAIR, twin='group-dro-kd-eta1',
        options=('model.objective.step_size=1.0', ),
        note='power check: q climbs towards the best groups (eta 1)'),
}

#: The group suite's default rows: the issue's four answers to a rare group,
#: all read against ``kd`` (12 runs over 3 seeds, about what the CPU machines
#: afford). The student alone, logit KD, the step-size, signal and Sagawa
#: rows and the power check run with ``--rows``.
GROUP_DEFAULT_ROWS = ('kd', 'kd-balanced', 'kd-reweighted', 'group-dro-kd')

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
                      'uet-add', 'uet-add-pkd', 'broken-fgd-shuffled')),
    'webly': Suite(
        name='webly', data=('--dataset', 'glyphs', '--out', 'data/glyphs'),
        data_root='data/glyphs/', rows=WEBLY_ROWS,
        # KD^3, its twin and the power check; the upper bound, the student and
        # the ablations on request (--rows), as CPU time allows
        default_rows=('web-kd', 'kd3', 'broken-web-kd-shuffled'),
        pools=(('--dataset', 'glyphs-web', '--out', 'data/glyphs_web'), ),
        teacher_suite='glyphs', presets=('cpu', ),
        doc_markers=('<!-- webly:start -->', '<!-- webly:end -->'),
        image='accuracy_webly.png'),
    'group': Suite(
        name='group',
        data=('--dataset', 'glyphs', '--out', 'data/glyphs_imbalanced',
              '--style-probs', 'train:plain=0.45,gradient=0.3,texture=0.2,photo=0.05'),
        data_root='data/glyphs_imbalanced/', rows=GROUP_ROWS,
        default_rows=GROUP_DEFAULT_ROWS,
        groups=GROUPS, teacher_suite='glyphs', reference='kd', presets=('cpu', ),
        doc_markers=('<!-- group:start -->', '<!-- group:end -->'),
        image='accuracy_group.png'),
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
        """The preset's version of a benchmark detector config (the
        student alone and the teacher; distiller rows are moved by
        :func:`preset_options`)."""
        if self.image_scale == 1 or not osp.basename(path).startswith('retinanet_'):
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
