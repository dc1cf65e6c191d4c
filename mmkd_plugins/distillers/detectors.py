"""What the distiller needs to know about MMDetection detectors.

Building a detector from a config path, loading a teacher checkpoint with
errors that name the file, running a detector stage by stage, and running a
detector's own loss from features computed already. Nothing here knows about
distillation terms.
"""
import os.path as osp
import warnings
from typing import Dict, NamedTuple, Optional, Sequence, Tuple, Union

import torch
from mmengine.config import Config, ConfigDict
from mmengine.runner.checkpoint import _load_checkpoint
from torch import Tensor, nn

from mmdet.registry import MODELS
from .recorder import OutputRecorder, resolve_module

#: The stages the teacher runs, in order; a recorded module must sit in one.
STAGES = {'backbone': 0, 'neck': 1, 'bbox_head': 2, 'rpn_head': 2}


def build_detector_cfg(cfg: Union[str, dict], key: str) -> ConfigDict:
    """A detector config dict from a dict or a config path.

    Args:
        cfg (str | dict): A model dict, or a config file path (``mmdet::``
            paths included) whose ``model`` is used.
        key (str): The config key, for error messages.
    """
    if isinstance(cfg, str):
        try:
            # Config.fromfile takes 'mmdet::' paths only inside _base_.
            path = Config._get_cfg_path(cfg, '')[0] if '::' in cfg else cfg
            loaded = Config.fromfile(path)
        except FileNotFoundError as e:
            raise FileNotFoundError(f'{key}: config {cfg!r} not found ({e})') from None
        if 'model' not in loaded:
            raise ValueError(f'{key}: config {cfg!r} has no "model"')
        return ConfigDict(loaded.model)
    if isinstance(cfg, dict):
        # Heads read test_cfg by attribute, so keep it a ConfigDict.
        return ConfigDict(cfg)
    raise TypeError(f'{key} must be a model dict or a config path, got {type(cfg).__name__}')


def load_teacher_weights(teacher: nn.Module, path: str) -> None:
    """Load ``path`` into ``teacher``, strictly, with errors naming the file.

    A distiller checkpoint (keys ``student.*``) is accepted too, so that a
    distilled student can teach the next one.
    """
    if not isinstance(path, str) or not path:
        raise ValueError(f'teacher_ckpt must be a checkpoint path, got {path!r}')
    if not path.startswith(('http://', 'https://')) and not osp.isfile(path):
        raise FileNotFoundError(f'teacher_ckpt: checkpoint {path!r} does not exist')
    try:
        ckpt = _load_checkpoint(path, map_location='cpu', logger='current')
    except Exception as e:  # corrupt file, refused pickle, ...
        raise ValueError(f'teacher_ckpt: cannot read {path!r}: {e}') from e
    state = ckpt.get('state_dict', ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or not state:
        raise ValueError(f'teacher_ckpt: {path!r} holds no state_dict')
    for prefix in ('module.', 'student.'):
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    try:
        result = teacher.load_state_dict(state, strict=False)
    except RuntimeError as e:  # size mismatches raise even when not strict
        raise ValueError(f'teacher_ckpt: {path!r} does not match the teacher '
                         f'model: {str(e).splitlines()[1].strip()} ...') from None
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            f'teacher_ckpt: {path!r} does not match the teacher model: '
            f'{len(result.missing_keys)} missing keys '
            f'{result.missing_keys[:3]}, {len(result.unexpected_keys)} '
            f'unexpected keys {result.unexpected_keys[:3]}')


def build_teacher(cfg: Union[str, dict], ckpt: Optional[str]) -> nn.Module:
    """The teacher detector, with ``ckpt``'s weights (``None``: random, with a
    warning), frozen and in eval mode."""
    teacher = MODELS.build(build_detector_cfg(cfg, 'teacher'))
    if ckpt is None:
        warnings.warn('teacher_ckpt=None: the teacher is randomly initialised')
    else:
        load_teacher_weights(teacher, ckpt)
    teacher.requires_grad_(False)
    return teacher.eval()


def warn_if_normalised_differently(student: nn.Module, teacher: nn.Module) -> None:
    """Both models are fed the student's normalisation; say so when the
    teacher's preprocessor would have normalised otherwise."""
    s, t = student.data_preprocessor, teacher.data_preprocessor
    for attr in ('mean', 'std'):
        sv, tv = getattr(s, attr, None), getattr(t, attr, None)
        if sv is not None and tv is not None and not torch.allclose(sv, tv):
            warnings.warn(
                f'teacher data_preprocessor.{attr} {tv.flatten().tolist()} '
                f'differs from the student\'s {sv.flatten().tolist()}; both '
                'models are fed the student\'s normalisation')


class Inherited(NamedTuple):
    """One entry of ``init_student_from_teacher``: the student module
    ``student`` starts from the teacher's module ``teacher``; ``frozen`` keeps
    it at those weights (no gradient, eval mode), e.g. a head the student
    shares with the teacher (KD^3's head alignment, ``docs/webly.md``)."""
    student: str
    teacher: str
    frozen: bool = False


def parse_inherited(entries: Sequence) -> Tuple[Inherited, ...]:
    """``init_student_from_teacher`` entries: a module name (the same in both
    models) or ``dict(student=..., teacher=..., frozen=False)`` (``teacher``
    defaults to ``student``). Errors name the entry."""
    if isinstance(entries, (str, dict)):
        entries = (entries, )
    out = []
    for i, entry in enumerate(entries):
        key = f'init_student_from_teacher[{i}]'
        if isinstance(entry, str):
            entry = dict(student=entry)
        if not isinstance(entry, dict):
            raise TypeError(f'{key} must be a module name or a dict(student=..., '
                            f'teacher=..., frozen=...), got {entry!r}')
        unknown = sorted(set(entry) - set(Inherited._fields))
        if unknown or 'student' not in entry:
            raise ValueError(f'{key}: keys are student (required), teacher and frozen; '
                             f'got {sorted(entry)}')
        name = entry['student']
        teacher = entry.get('teacher', name)
        frozen = entry.get('frozen', False)
        if not all(isinstance(n, str) and n for n in (name, teacher)):
            raise ValueError(f'{key}: student and teacher must be module names, got {entry!r}')
        if not isinstance(frozen, bool):
            raise TypeError(f'{key}.frozen must be True or False, got {frozen!r}')
        out.append(Inherited(name, teacher, frozen))
    return tuple(out)


def inherited_state(student: nn.Module, teacher: nn.Module, prefix: str,
                    teacher_prefix: Optional[str] = None) -> Dict[str, Tensor]:
    """The state of the teacher's module ``teacher_prefix`` (default
    ``prefix``), checked against the student's module ``prefix``
    (``init_student_from_teacher``: only identical layouts can be copied)."""
    teacher_prefix = teacher_prefix or prefix
    key = f'init_student_from_teacher: {prefix!r}'
    if teacher_prefix != prefix:
        key += f' from the teacher\'s {teacher_prefix!r}'
    own = resolve_module(student, prefix, 'student', key).state_dict()
    theirs = resolve_module(teacher, teacher_prefix, 'teacher', key).state_dict()
    for name, value in own.items():
        if name not in theirs or theirs[name].shape != value.shape:
            got = tuple(theirs[name].shape) if name in theirs else 'nothing'
            raise ValueError(f'{key}: student {prefix}.{name} {tuple(value.shape)} '
                             f'vs teacher {got}; only identical layouts can be copied')
    return theirs


@torch.no_grad()
def check_shared_head(student: nn.Module, teacher: nn.Module, head: str,
                      probe_size: Sequence[int]) -> None:
    """A head the student takes frozen from the teacher reads what the
    student's neck gives, so that must have the teacher's level count and
    widths (KD^3's head alignment: a projector at the end of the student's
    neck maps its widths). Checked on a dummy image, in eval mode."""
    outs = []
    for model in (student, teacher):
        was_training = model.training
        model.eval()
        try:
            outs.append(model.extract_feat(torch.zeros(1, 3, *probe_size)))
        finally:
            model.train(was_training)
    widths = [[t.shape[1] for t in feats] for feats in outs]
    if widths[0] != widths[1]:
        raise ValueError(
            f'init_student_from_teacher: {head!r} is frozen, so the student runs the teacher\'s '
            f'head, whose input widths must match: the student\'s neck gives {widths[0]} '
            f'channels per level, the teacher\'s head takes {widths[1]}; end the student\'s '
            f'neck with a projector to {widths[1][0]} channels (configs/webly/)')


def run_stages(detector: nn.Module, inputs: Tensor, last_stage: int) -> None:
    """Run ``detector`` from the backbone up to ``last_stage`` (see
    :data:`STAGES`); outputs are picked up by forward hooks."""
    x = detector.backbone(inputs)
    if last_stage >= 1 and getattr(detector, 'with_neck', False):
        x = detector.neck(x)
    if last_stage >= 2:
        run_dense_heads(detector, x)


def run_dense_heads(detector: nn.Module, feats: Sequence[Tensor]) -> None:
    """Run the detector's dense heads (``rpn_head``, ``bbox_head``) on its
    neck's ``feats``; outputs are picked up by forward hooks."""
    for head in ('rpn_head', 'bbox_head'):
        if getattr(detector, head, None) is not None:
            getattr(detector, head)(feats)


@torch.no_grad()
def probe(detector: nn.Module, inputs: Tensor, stage: int, recorder: OutputRecorder
          ) -> Dict[str, Tuple[Tensor, ...]]:
    """The recorded levels ``{name: levels}`` of one pass of ``detector``, in
    eval mode, up to ``stage``, over ``inputs`` (a dummy image at build time)."""
    was_training = detector.training
    detector.eval()
    try:
        with recorder.record():
            run_stages(detector, inputs, stage)
        return {name: recorder.get(name) for name in recorder.names}
    finally:
        recorder.clear()
        detector.train(was_training)


def last_stage(names) -> int:
    """The deepest of :data:`STAGES` that holds one of the module ``names``."""
    return max((STAGES[n.split('.')[0]] for n in names), default=0)


def num_classes_of(detector: nn.Module, module: Optional[str] = None) -> Optional[int]:
    """The detector's class count (dense head or RoI head), if it has one;
    with ``module``, that of the head holding it (``rpn_head.*``: 1)."""
    head = getattr(detector, module.split('.')[0], None) if module else None
    if isinstance(getattr(head, 'num_classes', None), int):
        return head.num_classes
    for path in ('bbox_head', 'roi_head.bbox_head'):
        try:
            return int(detector.get_submodule(path).num_classes)
        except AttributeError:
            continue
    return None


def dense_head(detector: nn.Module) -> Optional[nn.Module]:
    """The detector's dense head: ``bbox_head`` of a one-stage detector,
    ``rpn_head`` of a two-stage one (``None`` if it has neither)."""
    for name in ('rpn_head', 'bbox_head'):
        if getattr(detector, name, None) is not None:
            return getattr(detector, name)
    return None


class _GivenFeatures:
    """Stands in for a detector inside its own ``loss``: ``extract_feat``
    returns the features it was given, every other attribute is the
    detector's. The detector itself is left untouched."""

    def __init__(self, detector: nn.Module, feats: Sequence[Tensor]):
        self._detector, self._feats = detector, tuple(feats)

    def extract_feat(self, inputs) -> tuple:
        return self._feats

    def __getattr__(self, name):
        return getattr(self._detector, name)


def loss_from_features(detector: nn.Module, inputs: Tensor, feats: Sequence[Tensor],
                       data_samples) -> dict:
    """``detector.loss`` with ``detector.extract_feat`` replaced by ``feats``.

    Runs MMDetection's own ``loss`` of the detector's class (heads, sampling,
    loss terms), so nothing of it is copied here; only the backbone and neck
    pass is skipped.

    Args:
        detector (nn.Module): A detector whose ``loss`` starts with
            ``self.extract_feat(inputs)`` (single- and two-stage detectors).
        inputs (Tensor): The images (N, 3, H, W) the features belong to.
        feats (Sequence[Tensor]): What ``extract_feat`` would return, e.g.
            rows of a pass over a larger batch.
        data_samples (list[DetDataSample]): One per row of ``feats``.

    Returns:
        dict: The detector's loss dict.
    """
    try:
        return type(detector).loss(_GivenFeatures(detector, feats), inputs, data_samples)
    except TypeError as e:
        if 'super(' not in str(e):
            raise
        raise TypeError(f'{type(detector).__name__}.loss calls super(), so it cannot run on '
                        f'features computed already ({e})') from None
