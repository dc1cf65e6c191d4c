"""The parts a :class:`~mmkd_plugins.distillers.DetectionDistiller` is composed of.

A distillation method is the distiller plus small parts, each behind one of
three extension points (``docs/architecture.md`` shows a new method written
against them):

* **views** -- what the student and the teacher run on. ``views(inputs,
  data_samples)`` turns the data preprocessor's output into a :class:`Batch`;
  ``views.data_preprocessor(student_preprocessor)`` is the preprocessor the
  distiller uses. :class:`SingleView` (the default; FGD, UET, logit KD, group
  DRO) and :class:`~mmkd_plugins.distillers.TwoViews` (CRLD).
* **terms** -- which terms are computed. A :class:`DistillTerm` names the
  student and teacher modules it reads, checks and builds itself from a
  :class:`Probe` at build time, and returns its loss entries from a
  :class:`Step`. :class:`~mmkd_plugins.distillers.FeatureTerm` (every
  ``distill_losses`` entry: FGD, PKD, CWD, MSE, logit KD, UET) and
  :class:`~mmkd_plugins.distillers.CrossViewTerm` (CRLD). What the teacher
  gives a term beyond its recorded pass comes from a teacher-side provider
  of the term, e.g. UET's Monte Carlo passes
  (:class:`~mmkd_plugins.distillers.MCDropout`).
* **objective** -- how a batch is weighted or split. ``objective(distiller,
  batch)`` calls ``distiller.step`` on the batch or on parts of it and
  returns the loss dict. :class:`WholeBatch` (the default) and
  :class:`~mmkd_plugins.distillers.GroupDRO`.

Parts are plain objects, not modules: a term's trainable modules (its
``loss`` and ``adapters``) and an objective's state are registered on the
distiller itself, so checkpoint keys do not depend on how a method is
composed. A part given as a config dict is built from MMDetection's
``MODELS`` registry.
"""
from contextlib import nullcontext
from dataclasses import dataclass, replace
from typing import Dict, List, NamedTuple, Optional, Sequence, Set, Tuple

import torch
from torch import Tensor, nn

from mmdet.registry import MODELS
from .recorder import OutputRecorder


@dataclass
class Batch:
    """The images the student and the teacher run on, all views in one tensor.

    Attributes:
        inputs (Tensor): (V*N, 3, H, W), view-major: row ``v*N + i`` is view
            ``v`` of image ``i``.
        data_samples (list): V*N samples, in the rows' order.
        num_views (int): V. Default 1.
        homographies (Tensor, optional): (N, 3, 3) pixel maps from view 0 to
            view 1, when the views are not aligned pixel for pixel.
    """
    inputs: Tensor
    data_samples: list
    num_views: int = 1
    homographies: Optional[Tensor] = None

    @property
    def num_images(self) -> int:
        """N, the images per view."""
        return self.inputs.shape[0] // self.num_views

    def select(self, images: Sequence[int]) -> 'Batch':
        """The images ``images`` (indices in [0, N)) in every view."""
        n = self.num_images
        rows = [v * n + i for v in range(self.num_views) for i in images]
        index = torch.tensor(rows, device=self.inputs.device)
        homographies = None if self.homographies is None else self.homographies[list(images)]
        return replace(self, inputs=self.inputs.index_select(0, index),
                       data_samples=[self.data_samples[r] for r in rows],
                       homographies=homographies)


@dataclass
class Features:
    """One pass of the student's backbone and neck over a batch
    (:meth:`DetectionDistiller.student_features`), to be reused row by row.

    Attributes:
        feats (tuple[Tensor]): What ``student.extract_feat`` returned.
        records (dict): ``{module name: levels}`` recorded during that pass.
    """
    feats: Tuple[Tensor, ...]
    records: Dict[str, Tuple[Tensor, ...]]

    def select(self, rows: Sequence[int]) -> 'Features':
        """Rows ``rows`` of every tensor (for a single-view batch, row = image)."""
        return Features(take_rows(self.feats, rows), select_records(self.records, rows))


def take_rows(levels: Sequence[Tensor], rows: Sequence[int]) -> Tuple[Tensor, ...]:
    """Rows ``rows`` (batch indices) of every level, in that order."""
    index = torch.tensor(list(rows), dtype=torch.long, device=levels[0].device)
    return tuple(t.index_select(0, index) for t in levels)


def select_records(records: Dict[str, Sequence[Tensor]], rows: Sequence[int]
                   ) -> Dict[str, Tuple[Tensor, ...]]:
    """Rows ``rows`` of recorded modules ``{name: levels}`` (a shared pass
    reused on part of its batch)."""
    return {name: take_rows(levels, rows) for name, levels in records.items()}


class Step(NamedTuple):
    """What a term reads in one training step.

    Attributes:
        batch (Batch): The (sub-)batch of the step.
        student (OutputRecorder): The student's recorded modules.
        teacher (OutputRecorder): The teacher's recorded modules (a no-grad
            pass up to the deepest stage any term reads).
    """
    batch: Batch
    student: OutputRecorder
    teacher: OutputRecorder


class Probe(NamedTuple):
    """The recorded modules of one forward of a dummy image through each
    model at build time: ``{module name: levels}`` per model."""
    student: Dict[str, Tuple[Tensor, ...]]
    teacher: Dict[str, Tuple[Tensor, ...]]

    def shapes(self, who: str, name: str) -> List[tuple]:
        """Shapes of the levels of module ``name`` of ``'student'`` or ``'teacher'``."""
        return [tuple(t.shape) for t in getattr(self, who)[name]]


class SingleView:
    """The default view provider: the batch as the data preprocessor gives it."""

    def data_preprocessor(self, preprocessor: nn.Module) -> nn.Module:
        """The preprocessor the distiller uses: the student's own."""
        return preprocessor

    def __call__(self, inputs: Tensor, data_samples) -> Batch:
        if inputs.shape[0] == 0:
            raise ValueError('empty batch: the distiller received 0 images')
        return Batch(inputs, list(data_samples))


class WholeBatch:
    """The default objective: one step over the whole batch."""

    def attach(self, distiller: nn.Module) -> None:
        """Register the objective's state on ``distiller`` (none here)."""

    def __call__(self, distiller: nn.Module, batch: Batch) -> Dict[str, Tensor]:
        return distiller.step(batch)


class DistillTerm:
    """Base of the terms: which modules are read, and the defaults.

    A term sets ``name`` (unique in the distiller), ``keys`` (the loss entries
    it returns), ``student_modules`` and ``teacher_modules`` (module names to
    record; each must lie in a stage the teacher runs: backbone, neck, dense
    head), and after :meth:`build` its ``loss`` (an ``nn.Module``) and
    ``adapters`` (an ``nn.Module`` or ``None``), which the distiller
    registers as ``distill_losses[name]`` and ``adapters[name]``.
    """
    name: str
    keys: Tuple[str, ...]
    student_modules: Set[str] = frozenset()
    teacher_modules: Set[str] = frozenset()
    loss: Optional[nn.Module] = None
    adapters: Optional[nn.Module] = None

    def build(self, probe: Probe) -> None:
        """Check the probed shapes and build ``loss`` and ``adapters``."""
        raise NotImplementedError

    def recording(self):
        """Context active during the whole step, for terms that record more
        than module outputs (CRLD's RoI term keeps the sampled proposals)."""
        return nullcontext()

    def __call__(self, step: Step) -> Dict[str, Tensor]:
        """``{key: value}`` for each of ``keys``, before the distiller's
        ``distill_loss_scale``."""
        raise NotImplementedError


def build_part(cfg, default, **default_args):
    """A part from a config dict (MODELS registry), an object, or ``default()``."""
    if cfg is None:
        return default()
    if isinstance(cfg, dict):
        return MODELS.build(cfg, default_args=default_args or None)
    return cfg
