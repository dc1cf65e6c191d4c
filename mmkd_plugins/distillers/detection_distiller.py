"""DetectionDistiller: one frozen teacher detector, one student, config-named
distillation losses between their modules.

Config sketch (see ``configs/fgd/`` for complete ones)::

    model = dict(
        type='DetectionDistiller',
        student='mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',  # or a dict
        teacher='mmdet::retinanet/retinanet_r101_fpn_2x_coco.py',
        teacher_ckpt='checkpoints/retinanet_r101.pth',
        distill_losses=dict(
            loss_fgd=dict(student='neck', teacher='neck',
                          loss=dict(type='FGDLoss', alpha_fg=1e-3))))

Design decisions (the README explains them for users):

* The teacher is held *outside* the module tree. It is therefore never in the
  optimizer, never wrapped by DDP (no unused-parameter errors), never in
  ``state_dict`` (training checkpoints hold the student, adapters and loss
  parameters only; the teacher is reloaded from ``teacher_ckpt``), and
  ``train()`` never reaches it. ``_apply`` forwards ``.to()``/``.cuda()``.
* The teacher runs under ``no_grad`` in eval mode and only as far as the
  losses need: backbone, then neck, then dense head.
* Everything that can be checked is checked when the model is built, by a
  probe forward of a small dummy image through both models: module names,
  level counts, spatial sizes, channel widths, class counts.
"""
import inspect
import os.path as osp
import warnings
from contextlib import contextmanager, nullcontext
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.config import Config, ConfigDict
from mmengine.model import BaseModel
from mmengine.runner.checkpoint import _load_checkpoint
from torch import Tensor, nn

from mmdet.registry import MODELS
from ..losses.base import BaseDistillLoss
from .mc_dropout import check_placement, mc_teacher_samples, parse_mc_dropout
from .recorder import OutputRecorder, probe_shapes, resolve_module

_SPEC_KEYS = ('student', 'teacher', 'loss', 'adapter', 'levels', 'mc_dropout')
# The teacher runs stage by stage up to the deepest one a loss reads.
_STAGES = {'backbone': 0, 'neck': 1, 'bbox_head': 2, 'rpn_head': 2}
_REQUIRED = object()


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


def run_stages(detector: nn.Module, inputs: Tensor, last_stage: int) -> None:
    """Run ``detector`` from the backbone up to ``last_stage`` (see
    ``_STAGES``); outputs are picked up by forward hooks."""
    x = detector.backbone(inputs)
    if last_stage >= 1 and getattr(detector, 'with_neck', False):
        x = detector.neck(x)
    if last_stage >= 2:
        for head in ('rpn_head', 'bbox_head'):
            if getattr(detector, head, None) is not None:
                getattr(detector, head)(x)


def num_classes_of(detector: nn.Module) -> Optional[int]:
    """The detector's class count (dense head or RoI head), if it has one."""
    for path in ('bbox_head', 'roi_head.bbox_head'):
        try:
            return int(detector.get_submodule(path).num_classes)
        except AttributeError:
            continue
    return None


@MODELS.register_module()
class DetectionDistiller(BaseModel):
    """Distil a frozen teacher detector into a student detector.

    Args:
        student (dict | str): Student model dict or config path.
        teacher (dict | str): Teacher model dict or config path.
        teacher_ckpt (str | None): Teacher checkpoint (local path or URL).
            Required; ``None`` must be written explicitly and keeps the
            teacher randomly initialised (benchmarks and tests only).
        distill_losses (dict): ``{name: spec}``. Each spec has ``loss`` (a
            config of a :class:`BaseDistillLoss`), ``student`` and
            ``teacher`` (module names, default ``'neck'``), ``adapter``
            (``'auto'``: a 1x1 conv per level when widths differ, or
            ``None``: widths must match) and ``levels`` (indices of the
            levels to use, default all). ``in_channels`` and ``num_levels``
            of the loss are filled in from the probe when omitted. An
            optional ``mc_dropout=dict(p, passes, placement, reduce, scale)`` (see
            :mod:`~mmkd_plugins.distillers.mc_dropout`) makes the loss
            receive ``teacher_samples``, the teacher's ``passes``
            stochastic versions of the distilled neck levels; only a loss
            with ``accepts_teacher_samples = True`` takes it (and needs it),
            and ``reduce``, ``placement`` and ``scale`` fill the loss
            arguments of the same names.
        probe_size (tuple[int, int]): (H, W) of the dummy image used to check
            shapes at build time. Default (128, 128).
        init_student_from_teacher (Sequence[str]): Student modules (e.g.
            ``('neck', 'bbox_head')``) that start from the teacher's weights,
            as FGD's COCO results do; shapes must match. Applied in
            :meth:`init_weights`, i.e. after the student's own init and
            before any ``load_from``/``--resume``. Default: none.
        data_preprocessor: Ignored in favour of the student's own, so that
            both models see identical inputs.
        init_cfg (dict, optional): Initialisation config of the distiller.
    """

    def __init__(self,
                 student: Union[dict, str],
                 teacher: Union[dict, str],
                 teacher_ckpt: Optional[str] = _REQUIRED,
                 distill_losses: Optional[dict] = None,
                 probe_size: Sequence[int] = (128, 128),
                 init_student_from_teacher: Sequence[str] = (),
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        if teacher_ckpt is _REQUIRED:
            raise ValueError(
                'teacher_ckpt is required: the path of the trained teacher '
                '(write teacher_ckpt=None explicitly to distil from a random '
                'teacher, e.g. for benchmarks)')
        student_model = MODELS.build(build_detector_cfg(student, 'student'))
        super().__init__(
            data_preprocessor=student_model.data_preprocessor, init_cfg=init_cfg)
        self.student = student_model
        teacher_model = MODELS.build(build_detector_cfg(teacher, 'teacher'))
        if teacher_ckpt is None:
            warnings.warn('teacher_ckpt=None: the teacher is randomly initialised')
        else:
            load_teacher_weights(teacher_model, teacher_ckpt)
        teacher_model.requires_grad_(False)
        teacher_model.eval()
        # Outside the module tree on purpose; see the module docstring.
        self.__dict__['_teacher'] = teacher_model
        self.teacher_ckpt = teacher_ckpt
        self._check_preprocessors()

        self.distill_enabled = True  # DistillStopHook turns this off
        self.distill_loss_scale = 1.0  # DistillLossWeightHook schedules this
        self._predict_with_teacher = False
        self.specs: Dict[str, dict] = {}
        self.distill_losses = nn.ModuleDict()
        self.adapters = nn.ModuleDict()
        self._student_rec = self._teacher_rec = None  # set if anything is recorded
        # Student records of a shared feature pass (GroupDRODistiller).
        self._student_preset = None
        self._build_losses(distill_losses or {}, tuple(probe_size))
        self.init_student_from_teacher = tuple(init_student_from_teacher)
        for prefix in self.init_student_from_teacher:
            self._inherited_state(prefix)  # fail at build time, not at init

    def _inherited_state(self, prefix: str) -> Dict[str, Tensor]:
        """The teacher's state under ``prefix``, checked against the student."""
        key = f'init_student_from_teacher: {prefix!r}'
        student = resolve_module(self.student, prefix, 'student', key).state_dict()
        teacher = resolve_module(self.teacher, prefix, 'teacher', key).state_dict()
        for name, value in student.items():
            if name not in teacher or teacher[name].shape != value.shape:
                got = tuple(teacher[name].shape) if name in teacher else 'nothing'
                raise ValueError(f'{key}: student {prefix}.{name} {tuple(value.shape)} '
                                 f'vs teacher {got}; only identical layouts can be copied')
        return teacher

    def init_weights(self) -> None:
        """Initialise the student (its own init_cfg), then copy the modules
        of ``init_student_from_teacher`` from the teacher."""
        super().init_weights()
        with torch.no_grad():
            for prefix in self.init_student_from_teacher:
                self.student.get_submodule(prefix).load_state_dict(self._inherited_state(prefix))

    # -- construction --------------------------------------------------------
    @property
    def teacher(self) -> nn.Module:
        """The frozen teacher detector (not a registered submodule)."""
        return self._teacher

    def _check_preprocessors(self) -> None:
        s, t = self.student.data_preprocessor, self.teacher.data_preprocessor
        for attr in ('mean', 'std'):
            sv, tv = getattr(s, attr, None), getattr(t, attr, None)
            if sv is not None and tv is not None and not torch.allclose(sv, tv):
                warnings.warn(
                    f'teacher data_preprocessor.{attr} {tv.flatten().tolist()} '
                    f'differs from the student\'s {sv.flatten().tolist()}; both '
                    'models are fed the student\'s normalisation')

    def _build_losses(self, cfgs: dict, probe_size: Tuple[int, int]) -> None:
        if not isinstance(cfgs, dict):
            raise TypeError('distill_losses must be a dict {name: spec}')
        for name, spec in cfgs.items():
            self.specs[name] = self._parse_spec(name, spec)
        s_names, t_names = self._record_names()
        if not s_names and not t_names:
            return
        self._student_rec = OutputRecorder(self.student, s_names)
        self._teacher_rec = OutputRecorder(self.teacher, t_names)
        self._teacher_stage = max((_STAGES[n.split('.')[0]] for n in t_names), default=0)
        student_stage = max((_STAGES[n.split('.')[0]] for n in s_names), default=0)

        dummy = torch.zeros(1, 3, *probe_size)
        was_training = self.student.training
        self.student.eval()
        try:
            s_shapes = probe_shapes(
                lambda: run_stages(self.student, dummy, student_stage),
                self._student_rec, s_names)
        finally:
            self.student.train(was_training)
        t_shapes = probe_shapes(
            lambda: run_stages(self.teacher, dummy, self._teacher_stage),
            self._teacher_rec, t_names)

        self._check_probe(s_shapes, t_shapes)
        for name, spec in self.specs.items():
            key = f'distill_losses.{name}'
            s_levels = self._select(s_shapes[spec['student']], spec, key)
            t_levels = self._select(t_shapes[spec['teacher']], spec, key)
            self._check_shapes(key, spec, s_levels, t_levels)
            adapters = self._build_adapters(key, spec, s_levels, t_levels)
            if adapters is not None:
                self.adapters[name] = adapters
            self.distill_losses[name] = self._build_loss(key, spec, t_levels)
            if spec['mc_dropout']:
                self._check_mc_shapes(name, dummy, t_levels)

    def _record_names(self) -> Tuple[set, set]:
        """Student and teacher modules whose outputs each step records (and
        the probe checks); subclasses add the ones they read."""
        s_names = {s['student'] for s in self.specs.values()}
        t_names = {s['teacher'] for s in self.specs.values()}
        if any(s['mc_dropout'] and s['mc_dropout']['placement'] != 'head'
               for s in self.specs.values()):
            t_names.add('backbone')  # the input of the MC passes through the neck
        return s_names, t_names

    def _check_probe(self, s_shapes: dict, t_shapes: dict) -> None:
        """Hook for subclasses: check the probed shapes ``{name: [shape]}``
        of the recorded modules at build time."""

    def _parse_spec(self, name: str, spec) -> dict:
        key = f'distill_losses.{name}'
        if not isinstance(spec, dict):
            raise TypeError(f'{key} must be a dict with a "loss" config')
        unknown = sorted(set(spec) - set(_SPEC_KEYS))
        if unknown:
            raise ValueError(
                f'{key}: unknown key(s) {unknown}; allowed: {list(_SPEC_KEYS)}')
        if 'loss' not in spec:
            raise ValueError(f'{key}: missing "loss" (the loss config)')
        parsed = dict(student='neck', teacher='neck', adapter='auto', levels=None,
                      mc_dropout=None)
        parsed.update(spec)
        if parsed['adapter'] not in ('auto', None):
            raise ValueError(f"{key}.adapter must be 'auto' or None, got {parsed['adapter']!r}")
        for who, model in (('student', self.student), ('teacher', self.teacher)):
            module = parsed[who]
            resolve_module(model, module, who, f'{key}.{who}')
            if module.split('.')[0] not in _STAGES:
                raise ValueError(
                    f'{key}.{who}: {module!r} is not under one of '
                    f'{sorted(_STAGES)}; the distiller runs the teacher only '
                    'up to its dense head (RoI heads need proposals)')
        if parsed['mc_dropout'] is not None:
            parsed['mc_dropout'] = parse_mc_dropout(parsed['mc_dropout'], f'{key}.mc_dropout')
            if parsed['teacher'] != 'neck':
                raise ValueError(f"{key}.teacher={parsed['teacher']!r}: with mc_dropout the "
                                 "distilled teacher module must be 'neck'")
            check_placement(self.teacher, parsed['mc_dropout']['placement'],
                            f'{key}.mc_dropout')
        return parsed

    @staticmethod
    def _select(levels: List[tuple], spec: dict, key: str) -> List[tuple]:
        if spec['levels'] is None:
            return levels
        try:
            return [levels[i] for i in spec['levels']]
        except (IndexError, TypeError):
            raise ValueError(
                f'{key}.levels={spec["levels"]!r} does not index the '
                f'{len(levels)} recorded levels') from None

    @staticmethod
    def _check_shapes(key: str, spec: dict, s_levels, t_levels) -> None:
        if len(s_levels) != len(t_levels):
            raise ValueError(
                f'{key}: the student\'s {spec["student"]!r} gives '
                f'{len(s_levels)} levels but the teacher\'s {spec["teacher"]!r} '
                f'gives {len(t_levels)}')
        for i, (s, t) in enumerate(zip(s_levels, t_levels)):
            if len(s) != 4 or len(t) != 4 or s[2:] != t[2:]:
                raise ValueError(
                    f'{key}: level {i} shapes differ beyond channels: student '
                    f'{s} vs teacher {t} (for a {tuple(s[2:4]) if len(s) == 4 else s} '
                    'input probe); no adapter can align spatial sizes')

    def _build_adapters(self, key, spec, s_levels, t_levels):
        widths = [(s[1], t[1]) for s, t in zip(s_levels, t_levels)]
        if all(cs == ct for cs, ct in widths):
            return None
        mismatch = next((i, w) for i, w in enumerate(widths) if w[0] != w[1])
        if spec['adapter'] is None:
            raise ValueError(
                f'{key}: level {mismatch[0]} has {mismatch[1][0]} student '
                f'channels vs {mismatch[1][1]} teacher channels and '
                'adapter=None; set adapter="auto" to learn a 1x1 conv')
        if any(spec[w].split('.')[0] not in ('backbone', 'neck')
               for w in ('student', 'teacher')):
            s_cls, t_cls = num_classes_of(self.student), num_classes_of(self.teacher)
            raise ValueError(
                f'{key}: head outputs differ in width ({mismatch[1][0]} vs '
                f'{mismatch[1][1]}); student num_classes={s_cls}, teacher '
                f'num_classes={t_cls}. Head outputs are compared class by '
                'class, so the two heads need the same classes and anchors')
        return nn.ModuleList(nn.Conv2d(cs, ct, 1) for cs, ct in widths)

    def _build_loss(self, key: str, spec: dict, t_levels) -> nn.Module:
        cfg = dict(spec['loss'])
        loss_type = cfg.get('type')
        cls = MODELS.get(loss_type) if isinstance(loss_type, str) else loss_type
        if cls is None:
            raise ValueError(f'{key}.loss.type: unknown loss {loss_type!r}')
        if not (inspect.isclass(cls) and issubclass(cls, BaseDistillLoss)):
            raise TypeError(
                f'{key}.loss.type: {loss_type!r} is not a distillation loss '
                '(a subclass of mmkd_plugins.losses.BaseDistillLoss)')
        params = inspect.signature(cls.__init__).parameters
        accepts_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
        unknown = [k for k in cfg if k != 'type' and k not in params]
        if unknown and not accepts_any:
            raise ValueError(
                f'{key}.loss: {cls.__name__} has no argument(s) {unknown}; '
                f'it takes {[p for p in params if p != "self"]}')
        channels = {t[1] for t in t_levels}
        probed = dict(num_levels=len(t_levels))
        if 'num_classes' in params and num_classes_of(self.teacher) is not None:
            probed['num_classes'] = num_classes_of(self.teacher)
        if len(channels) == 1:
            probed['in_channels'] = channels.pop()
        for arg, value in probed.items():
            if arg not in params:
                continue
            if arg not in cfg:
                cfg[arg] = value
            elif cfg[arg] != value:
                raise ValueError(
                    f'{key}.loss.{arg}={cfg[arg]} but the teacher\'s '
                    f'{spec["teacher"]!r} gives {value}')
        takes_samples = getattr(cls, 'accepts_teacher_samples', False)
        if spec['mc_dropout'] and not takes_samples:
            raise ValueError(
                f'{key}.mc_dropout: {cls.__name__} does not take teacher samples; '
                'wrap it, e.g. loss=dict(type="UncertaintyAwareLoss", host=...)')
        if takes_samples and not spec['mc_dropout']:
            raise ValueError(
                f'{key}.loss.type: {cls.__name__} needs the teacher\'s MC dropout '
                f'samples; add {key}.mc_dropout=dict(p=0.1, passes=8)')
        for arg in ('reduce', 'placement', 'scale'):
            if not spec['mc_dropout'] or arg not in params:
                continue
            value = spec['mc_dropout'][arg]
            if cfg.setdefault(arg, value) != value:
                raise ValueError(f'{key}.loss.{arg}={cfg[arg]!r} contradicts '
                                 f'{key}.mc_dropout.{arg}={value!r}; set it in '
                                 'mc_dropout only')
        if getattr(cls, 'requires_same_classes', False):
            s_cls, t_cls = num_classes_of(self.student), num_classes_of(self.teacher)
            if s_cls != t_cls:
                raise ValueError(
                    f'{key}: {cls.__name__} compares classes, but the student '
                    f'has num_classes={s_cls} and the teacher {t_cls}')
        return MODELS.build(cfg)

    def _check_mc_shapes(self, name: str, dummy: Tensor, t_levels) -> None:
        key = f'distill_losses.{name}.mc_dropout'
        spec = self.specs[name]
        mc = spec['mc_dropout']
        try:
            shapes = [tuple(s.shape) for s in self.teacher_samples(dummy, name)]
        except Exception as e:  # an architecture the placement does not fit
            raise ValueError(f'{key}: the MC passes fail on the teacher: {e}') from e
        # (T, N, C, H, W) like the teacher's levels, but 'head' samples have
        # the head's channels and scale < 1 shrinks H and W.
        fits = len(shapes) == len(t_levels) and all(
            len(s) == 5 and s[:2] == (mc['passes'], t[0]) and
            (mc['placement'] == 'head' or s[2] == t[1]) and
            (s[3:] == t[2:] if mc['scale'] == 1 else s[3] <= t[2] and s[4] <= t[3])
            for s, t in zip(shapes, t_levels))
        if not fits:
            raise ValueError(f'{key}: the MC samples have shapes {shapes}, which do not '
                             f'fit the teacher levels {list(map(tuple, t_levels))}')

    @torch.no_grad()
    def teacher_samples(self, inputs: Tensor, name: str) -> Tuple[Tensor, ...]:
        """The teacher's MC dropout samples of spec ``name`` for ``inputs``.

        Runs the teacher's deterministic stages, then the batched MC passes
        (:func:`~mmkd_plugins.distillers.mc_dropout.mc_teacher_samples`). For
        visualisation and checks; training reuses the step's teacher pass.

        Args:
            inputs (Tensor): Preprocessed images (N, 3, H, W).
            name (str): A ``distill_losses`` entry with ``mc_dropout``.

        Returns:
            tuple[Tensor]: One (T, N, C, H, W) tensor per selected level.
        """
        with self._teacher_rec.record():
            run_stages(self.teacher, inputs, self._teacher_stage)
        try:
            return self._mc_samples(name)
        finally:
            self._teacher_rec.clear()

    def _mc_samples(self, name: str) -> Tuple[Tensor, ...]:
        # Reads the teacher's recorded pass: the backbone ran once already.
        spec = self.specs[name]
        mc = spec['mc_dropout']
        source = 'neck' if mc['placement'] == 'head' else 'backbone'
        samples = mc_teacher_samples(self.teacher, self._teacher_rec.get(source),
                                     mc['p'], mc['passes'], mc['placement'], mc['scale'])
        return tuple(self._select(list(samples), spec, name))

    # -- modes ---------------------------------------------------------------
    def forward(self, inputs: Tensor, data_samples=None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.student._forward(inputs, data_samples)
        raise RuntimeError(f'invalid mode {mode!r}: use loss, predict or tensor')

    def loss(self, inputs: Tensor, data_samples) -> Dict[str, Tensor]:
        """Student detection losses plus one entry per distillation loss."""
        if inputs.shape[0] == 0:
            raise ValueError('empty batch: the distiller received 0 images')
        if self._student_rec is None:
            return self.student.loss(inputs, data_samples)
        with self._student_rec.record(self._student_preset):
            losses = self.student.loss(inputs, data_samples)
        try:
            losses.update(self._distill(inputs, data_samples))
        finally:
            self._student_rec.clear()
            self._teacher_rec.clear()
        return losses

    def _distill(self, inputs: Tensor, data_samples) -> Dict[str, Tensor]:
        scale = float(self.distill_loss_scale)
        if not self.distill_enabled or scale == 0:
            # Keep every distillation parameter in the graph with a zero
            # gradient, so DDP without find_unused_parameters stays happy.
            zero = sum(p.sum() for p in self._distill_parameters()) * 0.
            return {self._out_key(n): zero + inputs.new_zeros(()) for n in self.specs}
        with torch.no_grad(), self._teacher_rec.record():
            run_stages(self.teacher, inputs, self._teacher_stage)
        out = {}
        for name, spec in self.specs.items():
            s = self._select(list(self._student_rec.get(spec['student'])), spec, name)
            t = self._select(list(self._teacher_rec.get(spec['teacher'])), spec, name)
            if name in self.adapters:
                s = [a(x) for a, x in zip(self.adapters[name], s)]
            extra = {}
            if spec['mc_dropout']:
                extra['teacher_samples'] = self._mc_samples(name)
            loss = self.distill_losses[name](tuple(s), tuple(t), data_samples=data_samples,
                                             **extra)
            out[self._out_key(name)] = loss * scale
        return out

    def _distill_parameters(self):
        yield from self.distill_losses.parameters()
        yield from self.adapters.parameters()

    @staticmethod
    def _out_key(name: str) -> str:
        # mmengine sums the entries whose key contains "loss".
        return name if name.startswith('loss') else f'loss_{name}'

    def predict(self, inputs: Tensor, data_samples=None):
        """Predictions of the student (of the teacher inside
        :meth:`teacher_predicts`)."""
        model = self.teacher if self._predict_with_teacher else self.student
        with torch.no_grad() if model is self.teacher else nullcontext():
            return model.predict(inputs, data_samples)

    @contextmanager
    def teacher_predicts(self):
        """Within the block, ``predict`` runs the teacher (for evaluating it)."""
        self._predict_with_teacher = True
        try:
            yield
        finally:
            self._predict_with_teacher = False

    # -- the teacher stays frozen, on the same device -------------------------
    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()
        return self

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        self.teacher._apply(fn, *args, **kwargs)
        return self
