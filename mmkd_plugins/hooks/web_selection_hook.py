"""KD^3's dynamic selection of web images, re-run every epoch, for detectors.

KD^3 (Tang et al., ICCV 2023, https://arxiv.org/abs/2307.11469; official code
``tangjialiang97/KD3``, ``dataset/I32.py``) decides before every epoch which
web images the student trains on:

1. combined prediction ``z = a(e) z_T + (1 - a(e)) z_S`` of teacher and
   student, with ``a(e) = 1 - exp(-5 ((e + 1) / E_a - 1)^2)`` for
   ``e < E_stop`` and 0 after (:func:`alpha_schedule`; KD^3: ``E_a = 160``,
   ``E_stop = 120`` of 240 epochs): the teacher decides first, the student
   takes over;
2. each image's pseudo-label ``c_i = argmax softmax(z_i)`` and confidence;
3. class-wise thresholds ``tau_c = 0.95 b_c / (2 - b_c)``, ``b_c = N_c /
   max_c N_c`` with ``N_c`` the images pseudo-labelled ``c``
   (:func:`class_thresholds`): the most frequent class needs 0.95, rare
   classes much less;
4. keep image ``i`` if its confidence exceeds ``tau_{c_i}`` (:func:`select_images`).

For a detector, ``z`` are image-level class logits made of pseudo-boxes
(:func:`box_logits`): each model's post-NMS detections on the image, per
class the best score, as a logit; a class without a box counts as scored at
``score_floor`` (0.05, MMDetection's usual detection threshold). Detector
scores are per-class sigmoids, so the confidence is ``sigmoid(z)`` of the
best class instead of a softmax. The same code scores one- and two-stage
detectors (``predict``).

:class:`WebSelectionHook` runs a round at the start of training and every
``interval`` iterations after it (an "epoch": by default one pass of the
training batches over the pool), scoring the whole pool with the student
and the teacher in eval mode, and hands the kept images to the
:class:`~mmkd_plugins.datasets.WebSelectionSampler` of the training data.
The teacher's scores never change, so they are computed once and kept. Each
round is logged (kept images per class and in total) and appended to
``<work_dir>/web_selection.jsonl`` with the kept image ids, which
``tools/webly_selection_plot.py`` draws.
"""
import json
import math
import os.path as osp
from typing import Dict, List, NamedTuple, Optional, Sequence

import numpy as np
import torch
from mmengine.dist import is_main_process
from mmengine.hooks import Hook
from mmengine.runner import Runner
from torch import Tensor

from mmdet.registry import HOOKS
from ..checks import check_number, check_positive_int
from .utils import get_distiller


# --------------------------------------------------------------------------
# the selection maths
# --------------------------------------------------------------------------
def alpha_schedule(epoch: int, ramp_epochs: float = 160, stop_epoch: float = 120) -> float:
    """KD^3's teacher share ``a(e)`` of the combined prediction.

    ``a(e) = 1 - exp(-5 ((e + 1) / E_a - 1)^2)`` for ``e < E_stop``, else 0.

    Args:
        epoch (int): ``e``, counted from 0.
        ramp_epochs (float): ``E_a`` > 0. KD^3: 160.
        stop_epoch (float): ``E_stop``. KD^3: 120.

    Returns:
        float: ``a(e)`` in [0, 1].
    """
    if epoch >= stop_epoch:
        return 0.0
    return 1.0 - math.exp(-5.0 * ((epoch + 1) / ramp_epochs - 1.0) ** 2)


def class_thresholds(counts: Tensor, p_cutoff: float = 0.95) -> Tensor:
    """KD^3's class-wise thresholds ``tau_c = p_cutoff * b_c / (2 - b_c)``,
    ``b_c = N_c / max_c N_c`` (all 0 when no image has a pseudo-label).

    Args:
        counts (Tensor): ``(C,)`` images pseudo-labelled with each class.
        p_cutoff (float): The threshold of the most frequent class. KD^3: 0.95.

    Returns:
        Tensor: ``(C,)`` float thresholds.
    """
    counts = counts.float()
    top = counts.max()
    if top <= 0:
        return torch.zeros_like(counts)
    b = counts / top
    return p_cutoff * b / (2 - b)


def box_logits(scores: Tensor, labels: Tensor, num_classes: int,
               score_floor: float = 0.05) -> Tensor:
    """Image-level class logits from an image's pseudo-boxes.

    Args:
        scores (Tensor): ``(B,)`` detection scores in [0, 1].
        labels (Tensor): ``(B,)`` their classes.
        num_classes (int): ``C``.
        score_floor (float): The score of a class without a box (and the
            least any class counts with), in (0, 1).

    Returns:
        Tensor: ``(C,)`` ``logit(max(score_floor, best score of class c))``.
    """
    best = torch.full((num_classes, ), float(score_floor))
    if len(scores):
        best = best.scatter_reduce(0, labels.long().cpu(), scores.float().cpu(), reduce='amax')
    return torch.logit(best.clamp(max=1 - 1e-6))


class Selection(NamedTuple):
    """The outcome of one selection round over M images and C classes.

    Attributes:
        keep (Tensor): ``(M,)`` bool.
        labels (Tensor): ``(M,)`` pseudo-labels (argmax of the combined logits).
        confidence (Tensor): ``(M,)`` ``sigmoid`` of the best combined logit.
        counts (Tensor): ``(C,)`` images per pseudo-label.
        thresholds (Tensor): ``(C,)`` ``tau_c``.
    """
    keep: Tensor
    labels: Tensor
    confidence: Tensor
    counts: Tensor
    thresholds: Tensor


def select_images(teacher: Tensor, student: Tensor, alpha: float,
                  p_cutoff: float = 0.95) -> Selection:
    """One KD^3 selection round (module docstring, steps 1-4).

    Args:
        teacher (Tensor): ``(M, C)`` image-level logits of the teacher.
        student (Tensor): ``(M, C)`` of the student.
        alpha (float): ``a(e)``, the teacher's share.
        p_cutoff (float): See :func:`class_thresholds`.

    Returns:
        Selection: keep mask, pseudo-labels, confidences, counts, thresholds.
    """
    z = alpha * teacher.float() + (1 - alpha) * student.float()
    best, labels = z.max(dim=1)
    confidence = torch.sigmoid(best)
    counts = torch.bincount(labels, minlength=z.shape[1])
    thresholds = class_thresholds(counts, p_cutoff)
    return Selection(confidence > thresholds[labels], labels, confidence, counts, thresholds)


# --------------------------------------------------------------------------
# the hook
# --------------------------------------------------------------------------
def _find_sampler(runner):
    from ..datasets import WebSelectionSampler
    loader = runner.train_dataloader
    for sampler in (getattr(loader, 'sampler', None),
                    getattr(getattr(loader, 'batch_sampler', None), 'sampler', None)):
        if isinstance(sampler, WebSelectionSampler):
            return sampler
    raise ValueError("WebSelectionHook: train_dataloader.sampler must be "
                     "dict(type='WebSelectionSampler') to draw the kept images only")


@HOOKS.register_module()
class WebSelectionHook(Hook):
    """Re-run KD^3's selection of the web pool every epoch (module docstring).

    Args:
        interval (int, optional): Iterations per epoch (one selection round
            each). Default: one pass of the training batches over the pool,
            ``ceil(pool size / batch size)``.
        ramp_epochs (float): ``E_a`` of :func:`alpha_schedule`. Default 160 (KD^3's).
        stop_epoch (float): ``E_stop``. Default 120 (KD^3's).
        p_cutoff (float): See :func:`class_thresholds`. Default 0.95.
        score_floor (float): See :func:`box_logits`. Default 0.05.
        pipeline (list, optional): The scoring pipeline (deterministic); default
            the validation pipeline. The pool itself is
            ``train_dataloader.dataset`` with this pipeline.
        batch_size (int): Images per scoring batch. Default 16.
        log_file (str): Appended to in the work dir, one json line per round.
    """
    priority = 'NORMAL'  # before CheckpointHook: a checkpoint holds the new round

    def __init__(self, interval: Optional[int] = None, ramp_epochs: float = 160,
                 stop_epoch: float = 120, p_cutoff: float = 0.95, score_floor: float = 0.05,
                 pipeline: Optional[List[dict]] = None, batch_size: int = 16,
                 log_file: str = 'web_selection.jsonl'):
        self.interval = None if interval is None else check_positive_int('interval', interval)
        self.ramp_epochs = check_number('ramp_epochs', ramp_epochs, inclusive=False)
        self.stop_epoch = check_number('stop_epoch', stop_epoch)
        self.p_cutoff = check_number('p_cutoff', p_cutoff, max_value=1.0)
        self.score_floor = check_number('score_floor', score_floor, inclusive=False,
                                        max_value=0.5)
        self.pipeline = pipeline
        self.batch_size = check_positive_int('batch_size', batch_size)
        self.log_file = log_file
        self._loader = None
        self._teacher_cache: Optional[Dict[int, Tensor]] = None
        self._state: Optional[dict] = None  # the last round: epoch, kept ids

    # -- when ------------------------------------------------------------------
    def before_train(self, runner) -> None:
        get_distiller(runner, type(self).__name__)
        sampler = _find_sampler(runner)
        if self.interval is None:
            loader = runner.train_dataloader
            # under a batch sampler (mmdet's AspectRatioBatchSampler) the
            # DataLoader's own batch_size is None
            batch = loader.batch_size or getattr(loader.batch_sampler, 'batch_size', 1)
            self.interval = max(1, math.ceil(sampler.size / batch))
        runner.logger.info(f'WebSelectionHook: an epoch is {self.interval} iterations '
                           f'(pool of {sampler.size} images)')
        if self._state is not None and self._state['epoch'] == runner.iter // self.interval:
            self._apply(runner, self._state['kept'])  # restored from the checkpoint
        else:
            self.select(runner, runner.iter // self.interval, runner.iter)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        done = runner.iter + 1
        if done % self.interval == 0 and done < runner.max_iters:
            self.select(runner, done // self.interval, done)

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        if self._state is None:
            return
        state = dict(epoch=self._state['epoch'], kept=torch.tensor(self._state['kept']))
        if self._teacher_cache:
            ids = sorted(self._teacher_cache)
            state['teacher_ids'] = torch.tensor(ids)
            state['teacher_logits'] = torch.stack([self._teacher_cache[i] for i in ids])
        checkpoint['web_selection'] = state

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        state = checkpoint.get('web_selection')
        if state is None:
            return
        self._state = dict(epoch=int(state['epoch']), kept=state['kept'].tolist())
        if 'teacher_ids' in state:
            self._teacher_cache = dict(zip(state['teacher_ids'].tolist(),
                                           state['teacher_logits']))

    # -- what --------------------------------------------------------------------
    def select(self, runner, epoch: int, start: int) -> Selection:
        """Score the pool, select, hand the kept images to the sampler, log
        (``start``: the first iteration that draws from the new selection)."""
        alpha = alpha_schedule(epoch, self.ramp_epochs, self.stop_epoch)
        distiller = get_distiller(runner, type(self).__name__)
        ids, student = self._score(runner, distiller, 'student' if alpha < 1 else None)
        if self._teacher_cache is None and alpha > 0:
            t_ids, t_logits = self._score(runner, distiller, 'teacher')
            self._teacher_cache = dict(zip(t_ids, t_logits))
        num_classes = len(runner.train_dataloader.dataset.metainfo['classes'])
        teacher = torch.stack([self._teacher_cache[i] for i in ids]) \
            if alpha > 0 else torch.zeros(len(ids), num_classes)
        if student is None:
            student = torch.zeros_like(teacher)
        result = select_images(teacher, student, alpha, self.p_cutoff)
        kept = [i for i, k in zip(ids, result.keep.tolist()) if k]
        if not kept:
            runner.logger.warning(f'web selection, epoch {epoch}: no image passes its class '
                                  'threshold; training on the whole pool this epoch')
            kept = list(ids)
        self._state = dict(epoch=epoch, kept=kept)
        self._apply(runner, kept)
        self._log(runner, epoch, start, alpha, ids, kept, result)
        return result

    def _apply(self, runner, kept: Sequence[int]) -> None:
        sampler = _find_sampler(runner)
        dataset = runner.train_dataloader.dataset
        kept = set(kept)
        keep = np.array([dataset.get_data_info(i)['img_id'] in kept for i in range(len(dataset))])
        sampler.set_keep(keep)

    def _pool_loader(self, runner):
        if self._loader is None:
            cfg = runner.cfg
            dataset = dict(cfg.train_dataloader.dataset)
            dataset['pipeline'] = self.pipeline or cfg.val_dataloader.dataset.pipeline
            dataset['test_mode'] = False
            self._loader = Runner.build_dataloader(dict(
                dataset=dataset, batch_size=self.batch_size, num_workers=0,
                sampler=dict(type='DefaultSampler', shuffle=False),
                collate_fn=dict(type='pseudo_collate')))
        return self._loader

    @torch.no_grad()
    def _score(self, runner, distiller, who: Optional[str]):
        """``(img ids, (M, C) logits of who's pseudo-boxes)``; ``who=None``
        lists the ids only."""
        loader = self._pool_loader(runner)
        if who is None:
            infos = [loader.dataset.get_data_info(i) for i in range(len(loader.dataset))]
            return [info['img_id'] for info in infos], None
        model = getattr(distiller, who)
        num_classes = len(loader.dataset.metainfo['classes'])
        was_training = distiller.training
        distiller.eval()
        ids, logits = [], []
        try:
            for data in loader:
                data = distiller.data_preprocessor(data, False)
                for sample in model.predict(data['inputs'], data['data_samples']):
                    pred = sample.pred_instances
                    ids.append(int(sample.img_id))
                    logits.append(box_logits(pred.scores, pred.labels, num_classes,
                                             self.score_floor))
        finally:
            distiller.train(was_training)
        return ids, torch.stack(logits)

    def _log(self, runner, epoch: int, start: int, alpha: float, ids, kept,
             result: Selection) -> None:
        classes = runner.train_dataloader.dataset.metainfo['classes']
        kept_per_class = torch.bincount(result.labels[result.keep], minlength=len(classes))
        runner.logger.info(
            f'web selection, epoch {epoch} (from iteration {start}): a={alpha:.3f}, kept '
            f'{len(kept)} of {len(ids)} images; kept/pseudo-labelled per class: ' + ', '.join(
                f'{c} {k}/{n}' for c, k, n in zip(classes, kept_per_class.tolist(),
                                                  result.counts.tolist())))
        runner.message_hub.update_scalar('train/web_kept', len(kept))
        runner.message_hub.update_scalar('train/web_alpha', alpha)
        if not is_main_process():
            return
        record = dict(epoch=epoch, iter=start, alpha=alpha, p_cutoff=self.p_cutoff,
                      pool=len(ids), kept=len(kept), classes=list(classes),
                      pseudo_labelled=result.counts.tolist(),
                      kept_per_class=kept_per_class.tolist(),
                      thresholds=[round(t, 4) for t in result.thresholds.tolist()],
                      kept_ids=sorted(kept))
        with open(osp.join(runner.work_dir, self.log_file), 'a') as f:
            f.write(json.dumps(record) + '\n')
