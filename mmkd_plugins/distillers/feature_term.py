"""FeatureTerm: one ``distill_losses`` entry of a distiller config.

A spec names a student and a teacher module, the levels to use, an adapter
policy and a loss::

    loss_fgd=dict(student='neck', teacher='neck', levels=None, adapter='auto',
                  loss=dict(type='FGDLoss', ...), mc_dropout=None, image_weights=None)

Each step the term reads both modules' recorded levels, adapts the student's
channels, and calls the loss (:class:`~mmkd_plugins.losses.BaseDistillLoss`).
With ``mc_dropout`` the term's teacher-side provider
(:class:`~mmkd_plugins.distillers.MCDropout`) adds ``teacher_var``; with
``image_weights`` a provider of one weight per image (e.g. KD^3's
:class:`~mmkd_plugins.distillers.DisagreementWeights`) gives the loss's
``weights``.
Every rule is checked at build time against the probe, with errors that name
the config key.
"""
from typing import Dict, List, Optional, Sequence

from mmdet.registry import MODELS
from torch import Tensor, nn

from ..checks import check_loss_args, distill_loss_class, fill_loss_args
from .detectors import STAGES, num_classes_of
from .mc_dropout import MCDropout
from .parts import DistillTerm, Probe, Step, build_part
from .recorder import resolve_module

SPEC_KEYS = ('student', 'teacher', 'loss', 'adapter', 'levels', 'mc_dropout', 'image_weights')


def loss_key(name: str) -> str:
    """The loss dict key of spec ``name``: mmengine sums the entries whose
    key contains "loss"."""
    return name if name.startswith('loss') else f'loss_{name}'


def select_levels(levels: Sequence, indices: Optional[Sequence[int]], key: str) -> list:
    """``levels[i]`` for ``i`` in ``indices`` (all when None); errors name ``key``."""
    if indices is None:
        return list(levels)
    try:
        return [levels[i] for i in indices]
    except (IndexError, TypeError):
        raise ValueError(f'{key}.levels={indices!r} does not index the '
                         f'{len(levels)} recorded levels') from None


class FeatureTerm(DistillTerm):
    """One ``distill_losses`` entry (module docstring).

    Args:
        name (str): The entry's name, e.g. ``'loss_fgd'``.
        spec (dict): The entry: ``loss`` (a BaseDistillLoss config),
            ``student`` and ``teacher`` (module names, default ``'neck'``),
            ``adapter`` (``'auto'``: a 1x1 conv per level when widths
            differ; ``None``: widths must match), ``levels`` (indices, default
            all), ``mc_dropout`` (see :class:`MCDropout`) and
            ``image_weights`` (a provider config, e.g. ``dict(type=
            'DisagreementWeights')``: ``(N,)`` weights of the images).
        student (nn.Module): The student detector.
        teacher (nn.Module): The teacher detector.
    """

    def __init__(self, name: str, spec: dict, student: nn.Module, teacher: nn.Module):
        self.name, self.key = name, f'distill_losses.{name}'
        self.student, self.teacher = student, teacher
        self.spec = self._parse(spec)
        mc = self.spec['mc_dropout']
        self.sampler = None if mc is None else MCDropout(mc, teacher, f'{self.key}.mc_dropout')
        if self.sampler is not None:
            self.spec['mc_dropout'] = self.sampler.cfg
        self.image_weights = build_part(self.spec['image_weights'], lambda: None)
        for who, model in (('student', student), ('teacher', teacher)):
            if self.image_weights is not None:
                resolve_module(model, getattr(self.image_weights, who), who,
                               f'{self.key}.image_weights.{who}')
        self.keys = (loss_key(name), )
        extra = self.image_weights
        self.student_modules = {self.spec['student']} | ({extra.student} if extra else set())
        self.teacher_modules = {self.spec['teacher']} | (
            self.sampler.teacher_modules if self.sampler else set()) | (
            {extra.teacher} if extra else set())

    def _parse(self, spec) -> dict:
        key = self.key
        if not isinstance(spec, dict):
            raise TypeError(f'{key} must be a dict with a "loss" config')
        unknown = sorted(set(spec) - set(SPEC_KEYS))
        if unknown:
            raise ValueError(f'{key}: unknown key(s) {unknown}; allowed: {list(SPEC_KEYS)}')
        if 'loss' not in spec:
            raise ValueError(f'{key}: missing "loss" (the loss config)')
        parsed = dict(student='neck', teacher='neck', adapter='auto', levels=None,
                      mc_dropout=None, image_weights=None)
        parsed.update(spec)
        if parsed['adapter'] not in ('auto', None):
            raise ValueError(f"{key}.adapter must be 'auto' or None, got {parsed['adapter']!r}")
        for who, model in (('student', self.student), ('teacher', self.teacher)):
            module = parsed[who]
            resolve_module(model, module, who, f'{key}.{who}')
            if module.split('.')[0] not in STAGES:
                raise ValueError(
                    f'{key}.{who}: {module!r} is not under one of {sorted(STAGES)}; the '
                    'distiller runs the teacher only up to its dense head (RoI heads '
                    'need proposals)')
        if parsed['mc_dropout'] is not None and parsed['teacher'] != 'neck':
            raise ValueError(f"{key}.teacher={parsed['teacher']!r}: with mc_dropout the "
                             "distilled teacher module must be 'neck'")
        return parsed

    def select(self, levels: Sequence) -> list:
        """The spec's ``levels`` of a module's recorded levels."""
        return select_levels(levels, self.spec['levels'], self.key)

    # -- build ---------------------------------------------------------------
    def build(self, probe: Probe) -> None:
        s_levels = self.select(probe.shapes('student', self.spec['student']))
        t_levels = self.select(probe.shapes('teacher', self.spec['teacher']))
        self._check_shapes(s_levels, t_levels)
        self.adapters = self._build_adapters(s_levels, t_levels)
        self.loss = self._build_loss(t_levels)
        if self.sampler is not None:
            self.sampler.check(lambda: self.teacher_var(probe.teacher), t_levels)
        if self.image_weights is not None:
            self.image_weights.build(probe, self.key,
                                     num_classes_of(self.teacher, self.image_weights.teacher))

    def _check_shapes(self, s_levels: List[tuple], t_levels: List[tuple]) -> None:
        spec = self.spec
        if len(s_levels) != len(t_levels):
            raise ValueError(
                f'{self.key}: the student\'s {spec["student"]!r} gives {len(s_levels)} '
                f'levels but the teacher\'s {spec["teacher"]!r} gives {len(t_levels)}')
        for i, (s, t) in enumerate(zip(s_levels, t_levels)):
            if len(s) != 4 or len(t) != 4 or s[2:] != t[2:]:
                raise ValueError(
                    f'{self.key}: level {i} shapes differ beyond channels: student '
                    f'{s} vs teacher {t} (for a {tuple(s[2:4]) if len(s) == 4 else s} '
                    'input probe); no adapter can align spatial sizes')

    def _build_adapters(self, s_levels, t_levels) -> Optional[nn.ModuleList]:
        widths = [(s[1], t[1]) for s, t in zip(s_levels, t_levels)]
        if all(cs == ct for cs, ct in widths):
            return None
        level, (cs, ct) = next((i, w) for i, w in enumerate(widths) if w[0] != w[1])
        if self.spec['adapter'] is None:
            raise ValueError(
                f'{self.key}: level {level} has {cs} student channels vs {ct} teacher '
                'channels and adapter=None; set adapter="auto" to learn a 1x1 conv')
        if any(self.spec[w].split('.')[0] not in ('backbone', 'neck')
               for w in ('student', 'teacher')):
            raise ValueError(
                f'{self.key}: head outputs differ in width ({cs} vs {ct}); student '
                f'num_classes={num_classes_of(self.student)}, teacher num_classes='
                f'{num_classes_of(self.teacher)}. Head outputs are compared class by '
                'class, so the two heads need the same classes and anchors')
        return nn.ModuleList(nn.Conv2d(cs, ct, 1) for cs, ct in widths)

    def _build_loss(self, t_levels) -> nn.Module:
        key, cfg = f'{self.key}.loss', dict(self.spec['loss'])
        cls = distill_loss_class(cfg, key)
        check_loss_args(cls, cfg, key)
        channels = {t[1] for t in t_levels}
        fill_loss_args(cls, cfg, key, dict(
            num_levels=len(t_levels),
            num_classes=num_classes_of(self.teacher, self.spec['teacher']),
            in_channels=channels.pop() if len(channels) == 1 else None),
            f"the teacher's {self.spec['teacher']!r} gives")
        takes_var = getattr(cls, 'accepts_teacher_var', False)
        if self.sampler is not None and not takes_var:
            raise ValueError(
                f'{self.key}.mc_dropout: {cls.__name__} does not take the MC variance; '
                'wrap it, e.g. loss=dict(type="UncertaintyAwareLoss", host=...)')
        if takes_var and self.sampler is None:
            raise ValueError(
                f'{key}.type: {cls.__name__} needs the teacher\'s MC dropout variance; '
                f'add {self.key}.mc_dropout=dict(p=0.1, passes=8)')
        if self.sampler is not None:
            self.sampler.fill_loss_config(cls, cfg, key)
        if getattr(cls, 'requires_same_classes', False):
            s_cls = num_classes_of(self.student, self.spec['student'])
            t_cls = num_classes_of(self.teacher, self.spec['teacher'])
            if s_cls != t_cls:
                raise ValueError(
                    f'{self.key}: {cls.__name__} compares classes, but the student has '
                    f'num_classes={s_cls} and the teacher {t_cls}')
        return MODELS.build(cfg)

    # -- step ----------------------------------------------------------------
    def teacher_var(self, teacher_records, training: bool = False) -> tuple:
        """The sampler's (N, C, H, W) MC variance of the selected levels,
        from the teacher's recorded pass (an OutputRecorder or ``{name:
        levels}``); ``training`` keys the masks by the training iteration."""
        return tuple(self.select(self.sampler(teacher_records, training)))

    def __call__(self, step: Step) -> Dict[str, Tensor]:
        s = self.select(step.student.get(self.spec['student']))
        t = self.select(step.teacher.get(self.spec['teacher']))
        if self.adapters is not None:
            s = [adapter(x) for adapter, x in zip(self.adapters, s)]
        extra = {} if self.sampler is None else {
            'teacher_var': self.teacher_var(step.teacher, training=True)}
        if self.image_weights is not None:
            w = self.image_weights(step).view(-1, 1, 1, 1)
            extra['weights'] = tuple(w for _ in s)
        return {self.keys[0]: self.loss(tuple(s), tuple(t),
                                        data_samples=step.batch.data_samples, **extra)}


def make_terms(distill_losses: dict, extra: Sequence, student: nn.Module,
               teacher: nn.Module) -> List[DistillTerm]:
    """A distiller's terms: one :class:`FeatureTerm` per ``distill_losses``
    entry, then the ``extra`` terms (objects, or configs built with
    ``student`` and ``teacher``); names must be unique."""
    if not isinstance(distill_losses, dict):
        raise TypeError('distill_losses must be a dict {name: spec}')
    terms = [FeatureTerm(name, spec, student, teacher) for name, spec in distill_losses.items()]
    terms += [build_part(t, None, student=student, teacher=teacher) for t in extra]
    names = [t.name for t in terms]
    clash = sorted({n for n in names if names.count(n) > 1})
    if clash:
        raise ValueError(f'distill_losses: {clash} name more than one term')
    return terms
