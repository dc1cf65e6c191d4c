"""Data-free distillation with a lenient teacher (TA-DFKD, for detectors).

Shin & Choi, "Teacher as a Lenient Expert: Teacher-Agnostic Data-Free
Knowledge Distillation", AAAI 2024 (https://arxiv.org/abs/2402.12406;
official code ``bigdata-inha/TA-DFKD-Official``). There are no training
images, only the teacher: a generator learns to make images, the student
learns from the teacher on them, and a lenient filter keeps only the images
the teacher handles cleanly. ``docs/data_free.md`` states every choice.

One training iteration (:meth:`DataFree.train_step`, two optimisers in
mmengine's ``OptimWrapperDict``, built by
:class:`DataFreeOptimWrapperConstructor`):

1. **Student step.** Draw images from the generator (no gradient), run the
   teacher once (backbone to dense head), keep the images the
   :class:`LenientFilter` calls clean, drawing again until the batch is full
   or ``max_draws`` batches were drawn (the official code draws until it is
   full). The student learns from the teacher on the kept images through
   the distiller's terms (``distill_losses``: a dense logit loss,
   ``DenseL1Loss`` as the paper or ``DenseKDLoss``, plus a feature loss;
   FGD's masks come from the teacher's post-NMS pseudo-boxes).
2. **Generator step**, after every ``student_steps`` student steps (10 in
   the official code). On a fresh batch: ``L_G = adv_weight * L_adv +
   bn_weight * L_BN + tv_weight * L_TV + l2_weight * ||x||_2`` (1, 10,
   1.5e-5, 6e-3 as the official code), where ``L_BN`` matches the kept
   images' batch statistics to the running statistics of the teacher's
   backbone BN layers, and ``L_adv = 1 - clamp(mean JS, 0, 1)`` over the
   teacher's and student's sigmoid class maps of the kept images: the
   generator seeks images where the two disagree. No class-prior term.

Every step's images depend only on the run's seed and the iteration
(``data_free_seed``, ``data_free_step``: buffers of the distiller, so in
checkpoints), so ``--resume`` continues exactly as an uninterrupted run.
"""
from contextlib import contextmanager
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmdet.structures import DetDataSample
from mmengine.dist import get_dist_info
from mmengine.model import is_model_wrapper
from mmengine.optim import DefaultOptimWrapperConstructor, OptimWrapperDict
from mmengine.structures import InstanceData
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.registry import MODELS, OPTIM_WRAPPER_CONSTRUCTORS
from ..checks import check_number, check_positive_int
from ..losses.generator_loss import adversarial_loss, bn_statistics_distance, total_variation
from .detection_distiller import DetectionDistiller
from .detectors import dense_head
from .lenient_filter import build_filter
from .parts import Batch, select_records, take_rows

_OWN = object()  # "the filter with its defaults", as opposed to None: no filter


# --------------------------------------------------------------------------
# BN statistics of the teacher
# --------------------------------------------------------------------------
class BNStatistics:
    """Forward pre-hooks on the teacher's BatchNorm layers under ``scope``;
    inside :meth:`record` each call appends its layer's
    :func:`bn_statistics_distance` to the list the block yields.

    Args:
        teacher (nn.Module): The teacher detector.
        scope (str): The module whose BN layers are matched. Default
            ``'backbone'``: with ``norm_eval=True`` they keep the statistics
            of the backbone's pretraining (ImageNet for COCO detectors).

    Raises:
        ValueError: No BN layer with running statistics under ``scope``.
    """

    def __init__(self, teacher: nn.Module, scope: str = 'backbone'):
        try:
            root = teacher.get_submodule(scope)
        except AttributeError:
            raise ValueError(f'data_free.bn_scope={scope!r}: the teacher has no module of '
                             'that name') from None
        self.layers = [m for m in root.modules() if isinstance(m, _BatchNorm)
                       and m.track_running_stats and m.running_mean is not None]
        if not self.layers:
            raise ValueError(
                f'teacher: no BatchNorm layer with running statistics under '
                f'data_free.bn_scope={scope!r} (GroupNorm, LayerNorm, or BN with '
                'track_running_stats=False): the generator matches its images\' batch '
                'statistics to those running statistics (L_BN), so data-free distillation '
                'cannot use this teacher')
        self._distances: Optional[List[Tensor]] = None
        for layer in self.layers:
            layer.register_forward_pre_hook(self._hook)

    def _hook(self, module, args):
        if self._distances is not None:
            self._distances.append(bn_statistics_distance(args[0], module.running_mean,
                                                          module.running_var))

    @contextmanager
    def record(self):
        """Yields the list the teacher's BN layers append their distances
        to during the block (one per call); L_BN is their sum."""
        distances: List[Tensor] = []
        self._distances = distances
        try:
            yield distances
        finally:
            self._distances = None


# --------------------------------------------------------------------------
# The objective: student and generator steps
# --------------------------------------------------------------------------
def _concat(parts: List[Sequence[Tensor]]) -> Tuple[Tensor, ...]:
    """Level-wise concatenation of several draws' levels along the batch."""
    return tuple(torch.cat(levels) for levels in zip(*parts))


def _head_shapes(detector: nn.Module, size: Sequence[int]) -> List[tuple]:
    """Shapes of every output map of the dense head on a (1, 3, H, W) image."""
    was_training = detector.training
    detector.eval()
    try:
        with torch.no_grad():
            outs = dense_head(detector)(detector.extract_feat(torch.zeros(1, 3, *size)))
    finally:
        detector.train(was_training)
    return [tuple(t.shape) for out in outs for t in out]


@MODELS.register_module()
class DataFree:
    """The data-free objective (module docstring): it makes the images and
    trains the generator beside the student.

    Args:
        generator (dict): The image source: :class:`ImageGenerator` (default)
            or :class:`GaussianNoiseImages` (no generator steps).
        lenient_filter (dict | None): :class:`LenientFilter` arguments; ``{}``
            for its defaults (the official settings); ``None``: every image
            is kept (the paper's "basic" generator).
        student_steps (int): Student steps per generator step. Default 10.
        max_draws (int): Batches a student step may draw to fill its batch
            with kept images. Default 4.
        adv_weight, bn_weight, tv_weight, l2_weight (float): Weights of the
            generator's terms. Defaults 1, 10, 1.5e-5, 6e-3 (the official).
        temperature (float): Of the adversarial JS. Default 3.
        prob_clamp (float): Probability floor of the JS. Default 0.01.
        bn_scope (str): Where the matched BN layers are. Default 'backbone'.
        pseudo_score_thr (float): The teacher's post-NMS detections at or
            above this score are the pseudo-boxes of the student step's
            samples (FGD's masks). Default 0.3.
    """

    def __init__(self, generator: Optional[dict] = None, lenient_filter: Optional[dict] = _OWN,
                 student_steps: int = 10, max_draws: int = 4, adv_weight: float = 1.0,
                 bn_weight: float = 10.0, tv_weight: float = 1.5e-5, l2_weight: float = 6e-3,
                 temperature: float = 3.0, prob_clamp: float = 0.01,
                 bn_scope: str = 'backbone', pseudo_score_thr: float = 0.3):
        self.generator_cfg = dict(generator or dict(type='ImageGenerator'))
        self.filter = build_filter({} if lenient_filter is _OWN else lenient_filter)
        self.student_steps = check_positive_int('data_free.student_steps', student_steps)
        self.max_draws = check_positive_int('data_free.max_draws', max_draws)
        self.weights = {name: check_number(f'data_free.{name}', value) for name, value in (
            ('adv_weight', adv_weight), ('bn_weight', bn_weight), ('tv_weight', tv_weight),
            ('l2_weight', l2_weight))}
        self.temperature = check_number('data_free.temperature', temperature, inclusive=False)
        self.prob_clamp = check_number('data_free.prob_clamp', prob_clamp, inclusive=False,
                                       max_value=0.5)
        self.bn_scope = bn_scope
        self.pseudo_score_thr = check_number('data_free.pseudo_score_thr', pseudo_score_thr,
                                             max_value=1)

    # -- build ---------------------------------------------------------------
    def attach(self, distiller: DetectionDistiller) -> None:
        """Register the generator (``distiller.generator``) and the seed and
        step buffers; hook the teacher's BN layers; check that the dense
        heads can be compared."""
        if distiller.detection_loss:
            raise ValueError('DataFree: there is no ground truth; build the distiller with '
                             'detection_loss=False (type="DataFreeDistiller" does)')
        if not distiller.terms:
            raise ValueError('distill_losses is empty: a data-free student learns only from '
                             'its terms, e.g. DenseL1Loss on the class logits plus PKDLoss '
                             'on the neck')
        distiller.generator = MODELS.build(self.generator_cfg)
        size = getattr(distiller.generator, 'out_size', None)
        if not callable(getattr(distiller.generator, 'sample_latent', None)) or size is None:
            raise TypeError(f'data_free.generator: {type(distiller.generator).__name__} needs '
                            'sample_latent(num, rng) and out_size (see distillers/generators.py)')
        divisor = getattr(distiller.data_preprocessor, 'pad_size_divisor', 1)
        if size % divisor:
            raise ValueError(f'data_free.generator.out_size={size} is not a multiple of the '
                             f"student's pad_size_divisor={divisor}")
        self.bn = BNStatistics(distiller.teacher, self.bn_scope)
        heads = [dense_head(m) for m in (distiller.student, distiller.teacher)]
        if any(h is None for h in heads):
            raise ValueError('data-free distillation compares the dense heads (bbox_head or '
                             'rpn_head) of student and teacher; one of them has none')
        if not all(getattr(h, 'use_sigmoid_cls', False) for h in heads):
            raise ValueError('data-free distillation reads sigmoid class maps; a dense head '
                             'of student or teacher classifies with a softmax')
        probe = distiller.probe_size
        shapes = [_head_shapes(m, probe) for m in (distiller.student, distiller.teacher)]
        if shapes[0] != shapes[1]:
            raise ValueError(f'the dense heads of student and teacher differ in their outputs '
                             f'{shapes[0]} vs {shapes[1]} on a {probe} image: the adversarial '
                             'term needs the same classes, anchors and levels')
        self.reg_max = getattr(heads[1], 'reg_max', None)
        distiller.register_buffer('data_free_step', torch.zeros((), dtype=torch.long))
        # Drawn from the global RNG, i.e. from the run's randomness.seed.
        distiller.register_buffer('data_free_seed', torch.randint(2**31 - 1, ()))

    # -- images --------------------------------------------------------------
    def _rng(self, distiller) -> torch.Generator:
        rank, world = get_dist_info()
        step = int(distiller.data_free_step)
        seed = int(distiller.data_free_seed) * 1_000_003 + step * world + rank
        return torch.Generator().manual_seed(seed)

    @staticmethod
    def _device(distiller) -> torch.device:
        return next(distiller.student.parameters()).device

    def normalise(self, distiller, images: Tensor) -> Tensor:
        """[0, 1] images as the models' input: times 255, then the student's
        preprocessor's mean and std."""
        pre = distiller.data_preprocessor
        x = images * 255
        if getattr(pre, '_enable_normalize', False):
            x = (x - pre.mean) / pre.std
        return x

    def draw(self, distiller, num: int, rng: torch.Generator) -> Tensor:
        """``num`` generated images as model inputs (N, 3, S, S); with a
        gradient to the generator when grad mode is on."""
        generator = distiller.generator
        latent = generator.sample_latent(num, rng).to(self._device(distiller))
        return self.normalise(distiller, generator(latent))

    def pseudo_samples(self, distiller, inputs: Tensor, outs: Sequence) -> List[DetDataSample]:
        """Data samples of generated ``inputs`` whose ``gt_instances`` are the
        teacher's post-NMS detections (from its dense head's ``outs``)
        scoring at least ``pseudo_score_thr``."""
        h, w = inputs.shape[-2:]
        meta = dict(img_shape=(h, w), ori_shape=(h, w), pad_shape=(h, w),
                    batch_input_shape=(h, w), scale_factor=(1.0, 1.0))
        metas = [dict(meta) for _ in range(inputs.shape[0])]
        with torch.no_grad():
            results = dense_head(distiller.teacher).predict_by_feat(
                *outs, batch_img_metas=metas, rescale=False)
        samples = []
        for img_meta, result in zip(metas, results):
            kept = result[result.scores >= self.pseudo_score_thr]
            sample = DetDataSample(metainfo=img_meta)
            sample.gt_instances = InstanceData(bboxes=kept.bboxes, labels=kept.labels)
            samples.append(sample)
        return samples

    # -- steps ---------------------------------------------------------------
    def student_losses(self, distiller, num: int, rng: torch.Generator):
        """The student's loss dict on up to ``num`` kept images, and stats.

        Returns:
            tuple: ``(losses, stats)``; ``stats`` holds ``kept_frac`` (the
            fraction of the drawn images the filter kept), ``draws``,
            ``images`` (the student's batch) and ``boxes_per_image`` (the
            teacher's pseudo-boxes per image of that batch).
        """
        images, records, outs, drawn, passed = [], [], [], 0, 0
        for _ in range(self.max_draws if self.filter else 1):
            with torch.no_grad():
                x = self.draw(distiller, num, rng)
            rec, out = distiller.teacher_outputs(x)
            keep = (self.filter(out[0]).nonzero().flatten().tolist() if self.filter
                    else list(range(num)))
            drawn, passed = drawn + num, passed + len(keep)
            keep = keep[:num - sum(t.shape[0] for t in images)]
            images.append(x[keep])
            records.append(select_records(rec, keep))
            outs.append(tuple(take_rows(o, keep) for o in out))
            if sum(t.shape[0] for t in images) >= num:
                break
        inputs = torch.cat(images)
        records = {name: _concat([r[name] for r in records]) for name in records[0]}
        outs = tuple(_concat([o[i] for o in outs]) for i in range(len(outs[0])))
        samples = self.pseudo_samples(distiller, inputs, outs)
        losses = distiller.step(Batch(inputs, samples), teacher=records)
        stats = dict(kept_frac=passed / drawn, draws=float(len(images)),
                     images=float(inputs.shape[0]),
                     boxes_per_image=float(np.mean([len(s.gt_instances) for s in samples])))
        return losses, stats

    def generator_losses(self, distiller, num: int, rng: torch.Generator):
        """The generator's loss dict on a fresh batch of ``num`` images
        (kept ones only for L_BN and L_adv, as the official code), and
        ``kept_frac``."""
        teacher, student = distiller.teacher, distiller.student
        x = self.draw(distiller, num, rng)
        kept = x
        if self.filter:
            with torch.no_grad():
                cls_maps = dense_head(teacher)(teacher.extract_feat(x))[0]
            kept = x[self.filter(cls_maps)]
        with self.bn.record() as distances:
            t_outs = dense_head(teacher)(teacher.extract_feat(kept))
        s_outs = dense_head(student)(student.extract_feat(kept))
        w = self.weights
        losses = dict(
            loss_adv=w['adv_weight'] * adversarial_loss(s_outs, t_outs, self.reg_max,
                                                        self.temperature, self.prob_clamp),
            loss_bn=w['bn_weight'] * torch.stack(distances).sum(),
            loss_tv=w['tv_weight'] * total_variation(x),
            loss_l2=w['l2_weight'] * torch.norm(x))
        return losses, dict(kept_frac=kept.shape[0] / num)

    def trains_generator(self, distiller) -> bool:
        return any(p.requires_grad for p in distiller.generator.parameters())

    def train_step(self, distiller, data, optim_wrapper) -> Dict[str, Tensor]:
        """One iteration: a student step, then a generator step after every
        ``student_steps``-th (module docstring). ``data`` only counts the
        images (a :class:`~mmkd_plugins.datasets.DataFreeDataset` batch)."""
        num = _batch_size(data)
        wrappers = _wrappers(optim_wrapper, self.trains_generator(distiller))
        rng = self._rng(distiller)
        with wrappers['student'].optim_context(distiller):
            losses, stats = self.student_losses(distiller, num, rng)
        total, log_vars = distiller.parse_losses(losses)
        wrappers['student'].update_params(total)
        log_vars.update(stats)
        if self.trains_generator(distiller) and \
                (int(distiller.data_free_step) + 1) % self.student_steps == 0:
            with wrappers['generator'].optim_context(distiller.generator):
                g_losses, g_stats = self.generator_losses(distiller, num, rng)
            g_total, g_log = distiller.parse_losses(g_losses)
            wrappers['generator'].update_params(g_total)
            # L_adv runs through the student; its gradient there is not a
            # student update, so it is dropped before the next student step.
            wrappers['student'].zero_grad()
            log_vars.update({f'g_{k}': v for k, v in {**g_log, **g_stats}.items()})
        distiller.data_free_step += 1
        return log_vars

    def __call__(self, distiller, batch: Batch):
        raise RuntimeError('DataFree trains from generated images in train_step; a loss of '
                           'a real batch (mode="loss") has no meaning here')

    # -- pictures ------------------------------------------------------------
    @torch.no_grad()
    def sample(self, distiller, num: int, seed: int = 0):
        """``num`` images of the generator as it is now, from latents drawn
        with ``seed`` (the same images at every point of training, up to the
        generator's change), without touching its BN statistics.

        Returns:
            tuple: ``(images, detections)``: (N, 3, S, S) in [0, 1], RGB; and
            per image the teacher's pseudo-boxes (``InstanceData``).
        """
        generator = distiller.generator
        saved = {k: v.clone() for k, v in generator.named_buffers()}
        try:
            latent = generator.sample_latent(num, torch.Generator().manual_seed(seed))
            images = generator(latent.to(self._device(distiller)))
        finally:
            for k, v in generator.named_buffers():
                v.copy_(saved[k])
        inputs = self.normalise(distiller, images)
        _, outs = distiller.teacher_outputs(inputs)
        detections = [s.gt_instances for s in self.pseudo_samples(distiller, inputs, outs)]
        if not getattr(distiller.data_preprocessor, '_channel_conversion', False):
            images = images.flip(1)  # the models read BGR: show RGB
        return images, detections


def _batch_size(data) -> int:
    if isinstance(data, dict) and isinstance(data.get('index'), (list, tuple, Tensor)):
        return len(data['index'])
    keys = sorted(data) if isinstance(data, dict) else type(data).__name__
    raise TypeError(f'data-free distillation trains on generated images: '
                    f'train_dataloader.dataset must be a DataFreeDataset (its batch_size is the '
                    f'number of images a step makes), got a batch of {keys}')


def _wrappers(optim_wrapper, needs_generator: bool):
    names = set(optim_wrapper.keys()) if isinstance(optim_wrapper, OptimWrapperDict) else set()
    if 'student' not in names or (needs_generator and 'generator' not in names):
        raise TypeError("optim_wrapper: data-free distillation trains with two optimisers; "
                        "write optim_wrapper=dict(constructor='DataFreeOptimWrapperConstructor', "
                        "student=dict(optimizer=...), generator=dict(optimizer=...))")
    return optim_wrapper


@MODELS.register_module()
class DataFreeDistiller(DetectionDistiller):
    """``DetectionDistiller(objective=DataFree(**data_free),
    detection_loss=False)``, the registered name of the data-free configs.

    Args:
        data_free (dict): :class:`DataFree` arguments.
        **kwargs: :class:`DetectionDistiller` arguments (``distill_losses``
            are the student's terms).
    """

    def __init__(self, data_free: Optional[dict] = None, **kwargs):
        for key in ('objective', 'detection_loss', 'views'):
            if key in kwargs:
                raise ValueError(f'DataFreeDistiller sets {key} itself; remove model.{key}')
        super().__init__(objective=DataFree(**(data_free or {})), detection_loss=False,
                         **kwargs)


@OPTIM_WRAPPER_CONSTRUCTORS.register_module()
class DataFreeOptimWrapperConstructor:
    """The two optimiser wrappers of data-free distillation, as an
    ``OptimWrapperDict``: ``generator`` over ``model.generator``, ``student``
    over every other parameter of the model (student, adapters, loss
    modules). A generator without parameters (Gaussian noise) gets none.

    Config::

        optim_wrapper = dict(
            constructor='DataFreeOptimWrapperConstructor',
            student=dict(optimizer=dict(type='AdamW', lr=1e-3)),    # + clip_grad, ...
            generator=dict(optimizer=dict(type='Adam', lr=1e-3)))
        param_scheduler = dict(student=[...], generator=[])          # one list per wrapper

    Args:
        optim_wrapper_cfg (dict): ``student`` and ``generator`` wrapper configs.
        paramwise_cfg (dict, optional): Applies to the student's wrapper.
    """

    def __init__(self, optim_wrapper_cfg: dict, paramwise_cfg: Optional[dict] = None):
        if not isinstance(optim_wrapper_cfg, dict) or \
                set(optim_wrapper_cfg) != {'student', 'generator'}:
            got = sorted(optim_wrapper_cfg) if isinstance(optim_wrapper_cfg, dict) else \
                optim_wrapper_cfg
            raise ValueError(f'optim_wrapper: DataFreeOptimWrapperConstructor takes the keys '
                             f"'student' and 'generator' (one wrapper config each), got {got}")
        self.cfgs, self.paramwise_cfg = optim_wrapper_cfg, paramwise_cfg

    def __call__(self, model: nn.Module) -> OptimWrapperDict:
        model = model.module if is_model_wrapper(model) else model
        generator = getattr(model, 'generator', None)
        if not isinstance(generator, nn.Module):
            raise TypeError(f'optim_wrapper: DataFreeOptimWrapperConstructor needs a model '
                            f'with a generator (DataFreeDistiller), got {type(model).__name__}')
        rest = nn.ModuleDict({n: m for n, m in model.named_children() if n != 'generator'})
        wrappers = {'student': DefaultOptimWrapperConstructor(
            dict(self.cfgs['student']), self.paramwise_cfg)(rest)}
        if any(p.requires_grad for p in generator.parameters()):
            wrappers['generator'] = DefaultOptimWrapperConstructor(
                dict(self.cfgs['generator']))(generator)
        return OptimWrapperDict(**wrappers)
