"""DetectionDistiller: one frozen teacher detector, one student, and the
distillation terms between them.

Config sketch (see ``configs/fgd/`` for complete ones)::

    model = dict(
        type='DetectionDistiller',
        student='mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',  # or a dict
        teacher='mmdet::retinanet/retinanet_r101_fpn_2x_coco.py',
        teacher_ckpt='checkpoints/retinanet_r101.pth',
        distill_losses=dict(
            loss_fgd=dict(student='neck', teacher='neck',
                          loss=dict(type='FGDLoss', alpha_fg=1e-3))))

One training step, top to bottom (:meth:`DetectionDistiller.loss`): the
``views`` turn the batch into what both models run on, the ``objective``
calls :meth:`~DetectionDistiller.step` once or per part of the batch, and a
step records the student's detection loss, runs the teacher, and adds every
term's entries. Methods plug in as parts (:mod:`.parts`,
``docs/architecture.md``).

Design decisions (the README explains them for users):

* The teacher is held *outside* the module tree: never in the optimizer,
  never wrapped by DDP, never in ``state_dict`` (it is reloaded from
  ``teacher_ckpt``), never reached by ``train()``; ``_apply`` forwards
  ``.to()``/``.cuda()``. It runs under ``no_grad`` in eval mode and only as
  far as the terms need: backbone, then neck, then dense head.
* Everything that can be checked is checked when the model is built, by a
  probe forward of a small dummy image through both models: module names,
  level counts, spatial sizes, channel widths, class counts.
"""
from contextlib import ExitStack, contextmanager, nullcontext
from itertools import chain
from typing import Dict, Optional, Sequence, Tuple, Union

import torch
from mmengine.model import BaseModel
from torch import Tensor, nn

from mmdet.registry import MODELS
from .detectors import (build_detector_cfg, build_teacher, check_shared_head, dense_head,
                        inherited_state, last_stage, loss_from_features, parse_inherited, probe,
                        run_dense_heads, run_stages, warn_if_normalised_differently)
from .feature_term import FeatureTerm, make_terms
from .parts import Batch, Features, Probe, SingleView, Step, WholeBatch, build_part
from .recorder import OutputRecorder

__all__ = ['DetectionDistiller', 'build_detector_cfg']
_REQUIRED = object()


@MODELS.register_module()
class DetectionDistiller(BaseModel):
    """Distil a frozen teacher detector into a student detector.

    Args:
        student (dict | str): Student model dict or config path.
        teacher (dict | str): Teacher model dict or config path.
        teacher_ckpt (str | None): Teacher checkpoint (local path or URL).
            Required; ``None`` must be written explicitly and keeps the
            teacher randomly initialised (benchmarks and tests only).
        distill_losses (dict): ``{name: spec}``, one
            :class:`~mmkd_plugins.distillers.FeatureTerm` each (``student``,
            ``teacher``, ``loss``, ``adapter``, ``levels``, ``mc_dropout``).
            A loss's ``in_channels``, ``num_levels`` and ``num_classes`` are
            filled in from the probe when omitted.
        probe_size (tuple[int, int]): (H, W) of the dummy image used to check
            shapes at build time. Default (128, 128).
        init_student_from_teacher (Sequence[str | dict]): Student modules
            (e.g. ``('neck', 'bbox_head')``) that start from the teacher's
            weights, as FGD's COCO results do; shapes must match. An entry
            ``dict(student='neck.0.fpn_convs', teacher='neck.fpn_convs')``
            copies a teacher module of another name, and ``frozen=True``
            keeps the module at the teacher's weights (no gradient, eval
            mode): a frozen head is the teacher's head, so the student's neck
            must give the teacher's widths (KD^3's head alignment,
            ``docs/webly.md``). Applied in :meth:`init_weights`, i.e. after
            the student's own init and before any ``load_from``/``--resume``.
            Default: none.
        detection_loss (bool): Whether a step adds the student's own
            detection loss. ``False`` for unlabelled images (a web pool) and
            for data-free distillation (generated images, no ground truth):
            the student then runs only as far as the terms read (backbone,
            neck, dense heads) and the terms are the whole loss. Default True.
        views (dict | object, optional): What both models run on
            (:mod:`.parts`); default :class:`~.parts.SingleView`.
        terms (Sequence[dict | DistillTerm]): Terms besides the
            ``distill_losses`` entries, e.g. CRLD's cross-view term; a config
            dict is built with ``student`` and ``teacher`` given.
        objective (dict | object, optional): How a batch is weighted or
            split; default :class:`~.parts.WholeBatch`. An objective that
            trains more than the student (the generator of
            :class:`~.data_free.DataFree`) also defines ``train_step``, which
            then replaces mmengine's.
        data_preprocessor: Ignored in favour of the student's own (through
            ``views``), so that both models see identical inputs.
        init_cfg (dict, optional): Initialisation config of the distiller.
    """

    def __init__(self,
                 student: Union[dict, str],
                 teacher: Union[dict, str],
                 teacher_ckpt: Optional[str] = _REQUIRED,
                 distill_losses: Optional[dict] = None,
                 probe_size: Sequence[int] = (128, 128),
                 init_student_from_teacher: Sequence = (),
                 detection_loss: bool = True,
                 views=None,
                 terms: Sequence = (),
                 objective=None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None):
        if teacher_ckpt is _REQUIRED:
            raise ValueError(
                'teacher_ckpt is required: the path of the trained teacher '
                '(write teacher_ckpt=None explicitly to distil from a random '
                'teacher, e.g. for benchmarks)')
        objective = build_part(objective, WholeBatch)  # checks its arguments first
        views = build_part(views, SingleView)
        student_model = MODELS.build(build_detector_cfg(student, 'student'))
        super().__init__(data_preprocessor=views.data_preprocessor(
            student_model.data_preprocessor), init_cfg=init_cfg)
        self.student, self.views, self.objective = student_model, views, objective
        # Outside the module tree on purpose; see the module docstring.
        self.__dict__['_teacher'] = build_teacher(teacher, teacher_ckpt)
        self.teacher_ckpt = teacher_ckpt
        warn_if_normalised_differently(self.student, self.teacher)

        self.distill_enabled = True  # DistillStopHook turns this off
        self.distill_loss_scale = 1.0  # DistillLossWeightHook schedules this
        self._predict_with_teacher = False
        self.distill_losses = nn.ModuleDict()
        self.adapters = nn.ModuleDict()
        self.terms = make_terms(distill_losses or {}, terms, self.student, self.teacher)
        #: The parsed ``distill_losses`` specs, by name.
        self.specs = {t.name: t.spec for t in self.terms if isinstance(t, FeatureTerm)}
        self.probe_size = tuple(probe_size)
        self._build_terms(self.probe_size)
        if not isinstance(detection_loss, bool):
            raise TypeError(f'detection_loss must be True or False, got {detection_loss!r}')
        self.detection_loss = detection_loss
        self.init_student_from_teacher = parse_inherited(init_student_from_teacher)
        for entry in self.init_student_from_teacher:
            if entry.frozen and entry.student.split('.')[0] in ('bbox_head', 'rpn_head',
                                                                'roi_head'):
                check_shared_head(self.student, self.teacher, entry.student, probe_size)
            # fail now, not at init
            inherited_state(self.student, self.teacher, entry.student, entry.teacher)
            if entry.frozen:
                self.student.get_submodule(entry.student).requires_grad_(False)
        # the objective first: one that needs terms (DataFree) says why
        self.objective.attach(self)
        if not detection_loss and not self.terms:
            raise ValueError('detection_loss=False and no distillation term: nothing to '
                             'train on; add distill_losses or terms')

    @property
    def teacher(self) -> nn.Module:
        """The frozen teacher detector (not a registered submodule)."""
        return self._teacher

    # -- construction --------------------------------------------------------
    def _build_terms(self, probe_size) -> None:
        """Record what the terms read, probe both models with a dummy image,
        and let each term check the shapes and build its modules."""
        s_names = set().union(*(t.student_modules for t in self.terms))
        t_names = set().union(*(t.teacher_modules for t in self.terms))
        self._student_rec = OutputRecorder(self.student, s_names)
        self._student_stage = last_stage(s_names)
        self._teacher_rec = OutputRecorder(self.teacher, t_names)
        self._teacher_stage = last_stage(t_names)
        if not self.terms:
            return
        dummy = torch.zeros(1, 3, *probe_size)
        shapes = Probe(probe(self.student, dummy, last_stage(s_names), self._student_rec),
                       probe(self.teacher, dummy, self._teacher_stage, self._teacher_rec))
        for term in self.terms:
            term.build(shapes)
            self.distill_losses[term.name] = term.loss
            if term.adapters is not None:
                self.adapters[term.name] = term.adapters

    def init_weights(self) -> None:
        """Initialise the student (its own init_cfg), then copy the modules
        of ``init_student_from_teacher`` from the teacher."""
        super().init_weights()
        with torch.no_grad():
            for entry in self.init_student_from_teacher:
                self.student.get_submodule(entry.student).load_state_dict(
                    inherited_state(self.student, self.teacher, entry.student, entry.teacher))

    # -- training ------------------------------------------------------------
    def loss(self, inputs, data_samples) -> Dict[str, Tensor]:
        """The loss dict of one training batch: the ``objective`` over the
        batch the ``views`` make of ``inputs`` and ``data_samples``."""
        return self.objective(self, self.views(inputs, data_samples))

    def step(self, batch: Batch, features: Optional[Features] = None,
             teacher: Optional[Dict[str, Tuple[Tensor, ...]]] = None) -> Dict[str, Tensor]:
        """Student detection losses (unless ``detection_loss=False``) plus
        every term's entries on ``batch``.

        Args:
            batch (Batch): The (sub-)batch.
            features (Features, optional): The rows of ``batch`` of a shared
                :meth:`student_features` pass; the student's backbone and
                neck then do not run again.
            teacher (dict, optional): ``{module name: levels}`` of a teacher
                pass over exactly these rows (:meth:`teacher_outputs`, then
                :func:`~.parts.select_records`); the teacher then does not
                run again.
        """
        if not self.terms:
            return self._student_losses(batch, features)
        with ExitStack() as stack:
            for term in self.terms:
                stack.enter_context(term.recording())
            with self._student_rec.record(features.records if features else None):
                losses = self._student_losses(batch, features)
            try:
                losses.update(self._distill(batch, teacher))
            finally:
                self._student_rec.clear()
                self._teacher_rec.clear()
        return losses

    def _student_losses(self, batch: Batch, features: Optional[Features]) -> dict:
        if not self.detection_loss:
            # Unlabelled images: only what the terms read (module records).
            if features is None:
                run_stages(self.student, batch.inputs, self._student_stage)
            elif self._student_stage >= 2:
                run_dense_heads(self.student, features.feats)
            return {}
        if features is None:
            return self.student.loss(batch.inputs, batch.data_samples)
        return loss_from_features(self.student, batch.inputs, features.feats, batch.data_samples)

    def _distill(self, batch: Batch, teacher: Optional[dict] = None) -> Dict[str, Tensor]:
        scale = float(self.distill_loss_scale)
        if not self.distill_enabled or scale == 0:
            # Keep every distillation parameter in the graph with a zero
            # gradient, so DDP without find_unused_parameters stays happy.
            params = chain(self.distill_losses.parameters(), self.adapters.parameters())
            zero = sum(p.sum() for p in params) * 0.
            return {key: zero + batch.inputs.new_zeros(()) for t in self.terms for key in t.keys}
        with torch.no_grad(), self._teacher_rec.record(teacher):
            # not when the pass is given, nor for terms that read no module
            # (e.g. MixDistribution alone)
            if teacher is None and self._teacher_rec.names:
                run_stages(self.teacher, batch.inputs, self._teacher_stage)
        step = Step(batch, self._student_rec, self._teacher_rec)
        return {key: value * scale for term in self.terms for key, value in term(step).items()}

    def student_features(self, batch: Batch) -> Features:
        """The student's backbone and neck over the whole ``batch``, once,
        with the records of that pass; ``features.select(rows)`` feeds
        :meth:`step` on a part of the batch (BatchNorm sees the whole batch)."""
        with self._student_rec.record():
            feats = self.student.extract_feat(batch.inputs)
        try:
            return Features(tuple(feats), self._student_rec.recorded())
        finally:
            self._student_rec.clear()

    @torch.no_grad()
    def teacher_outputs(self, inputs: Tensor) -> Tuple[Dict[str, Tuple[Tensor, ...]], tuple]:
        """One no-grad teacher pass from the backbone through the dense head
        (the RPN of a two-stage detector), for a caller that needs the
        teacher's predictions besides what the terms read.

        Args:
            inputs (Tensor): (N, 3, H, W), normalised as the student's.

        Returns:
            tuple: ``(records, outputs)``: ``{module name: levels}`` of the
            modules the terms read (for :meth:`step`'s ``teacher``), and
            what the dense head's ``forward`` returned (e.g. RetinaNet's
            ``(cls_scores, bbox_preds)``, one (N, ., H_l, W_l) map per level).
        """
        with self._teacher_rec.record():
            outputs = dense_head(self.teacher)(self.teacher.extract_feat(inputs))
        try:
            return self._teacher_rec.recorded(), outputs
        finally:
            self._teacher_rec.clear()

    @torch.no_grad()
    def teacher_var(self, inputs: Tensor, name: str):
        """The MC variance of the teacher-side provider of term ``name``
        (UET's MC passes) for ``inputs`` (N, 3, H, W); for visualisation and
        tools (masks keyed as outside training), training reuses the step's
        teacher pass."""
        term = next((t for t in self.terms if t.name == name), None)
        if getattr(term, 'sampler', None) is None:
            raise ValueError(f'distill_losses.{name}: no term of that name runs MC passes')
        with self._teacher_rec.record():
            run_stages(self.teacher, inputs, self._teacher_stage)
        try:
            return term.teacher_var(self._teacher_rec)
        finally:
            self._teacher_rec.clear()

    def train_step(self, data, optim_wrapper):
        """mmengine's training step, or the objective's own when it trains
        more than the student (``objective.train_step(distiller, data,
        optim_wrapper)``, e.g. data-free distillation's generator and
        student steps with two optimisers)."""
        own = getattr(self.objective, 'train_step', None)
        if own is None:
            return super().train_step(data, optim_wrapper)
        return own(self, data, optim_wrapper)

    # -- other modes ---------------------------------------------------------
    def forward(self, inputs: Tensor, data_samples=None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.student._forward(inputs, data_samples)
        raise RuntimeError(f'invalid mode {mode!r}: use loss, predict or tensor')

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
        for entry in getattr(self, 'init_student_from_teacher', ()):
            if entry.frozen:  # its BatchNorm statistics stay the teacher's too
                self.student.get_submodule(entry.student).eval()
        return self

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        self.teacher._apply(fn, *args, **kwargs)
        return self
