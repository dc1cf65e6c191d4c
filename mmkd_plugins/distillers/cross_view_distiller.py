"""CRLD's weak/strong cross-view consistency for detectors: a view provider
(:class:`TwoViews`) and a logit term (:class:`CrossViewTerm`).

Every training image arrives as two spatially aligned views (the train
pipeline ends in MMDetection's ``MultiBranch`` with branches ``weak`` and
``strong``, see ``configs/cross_view/``). Student and teacher each run once
on the 2N images (views concatenated), so:

* the student's detection loss covers both views (one loss over 2N images:
  the mean of the two views', on the scale of single-view training);
* every ``distill_losses`` entry (FGD, FGD + UET, ...) is computed on both
  views, exactly as on one;
* :class:`CrossViewTerm` adds CRLD's within-view and cross-view terms
  (:class:`~mmkd_plugins.losses.CrossViewLoss`) on the classification logits:

  - dense heads (RetinaNet, FCOS, GFL, ATSS): the sigmoid class map of every
    FPN level, one row per anchor location;
  - RoI heads (Faster R-CNN): the teacher's RoI head classifies the
    student's sampled proposals, on its weak and on its strong view.

With ``geometric=True`` the strong pipeline may move pixels (Rotate, Shear,
Translate): the transform is read from each view's ``homography_matrix`` and
the strong view's dense maps are warped onto the weak view's grid (RoIs are
projected between the views); locations that fall outside the other view
are left out.

Config sketch (``CrossViewDistiller`` is ``DetectionDistiller`` with
``views=TwoViews(geometric)`` and ``terms=[CrossViewTerm(loss, head)]``)::

    model = dict(
        type='CrossViewDistiller', student=..., teacher=..., teacher_ckpt=...,
        cross_view=dict(loss=dict(type='CrossViewLoss', within_weight=2.0,
                                  cross_weight=0.5)),
        distill_losses=dict(...))  # optional feature losses
"""
from contextlib import contextmanager
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from mmdet.models.data_preprocessors import MultiBranchDataPreprocessor
from torch import Tensor, nn

from mmdet.registry import MODELS
from ..losses.cross_view_loss import CrossViewLoss, dense_rows
from .detection_distiller import DetectionDistiller
from .detectors import num_classes_of
from .parts import Batch, DistillTerm, Probe, Step

VIEWS = ('weak', 'strong')
_CV_KEYS = ('loss', 'head', 'geometric')
# Classification conv of each supported sigmoid dense head.
_DENSE_CLS = ('retina_cls', 'gfl_cls', 'atss_cls', 'conv_cls')
_PIPELINE_HINT = ("end the train pipeline with dict(type='MultiBranch', branch_field=['weak', "
                  "'strong'], weak=[...], strong=[...]) (see configs/cross_view/)")


class TwoViewPreprocessor(MultiBranchDataPreprocessor):
    """MMDetection's ``MultiBranchDataPreprocessor`` (each view through the
    student's preprocessor) that names the fix when a training batch has one
    view, instead of failing on ``list.keys``."""

    def forward(self, data: dict, training: bool = False) -> dict:
        if training and not isinstance(data.get('inputs'), dict):
            raise ValueError(f'a two-view distiller got a single-view training batch: '
                             f'{_PIPELINE_HINT}')
        return super().forward(data, training)


@MODELS.register_module()
class TwoViews:
    """View provider of two aligned views per image, weak then strong.

    Args:
        geometric (bool): Whether the strong view may be moved geometrically;
            then :attr:`Batch.homographies` maps weak-view pixels to
            strong-view pixels. Default False: the views' boxes must agree.
    """

    def __init__(self, geometric: bool = False):
        self.geometric = bool(geometric)

    def data_preprocessor(self, preprocessor: nn.Module) -> nn.Module:
        """MMDetection's multi-branch preprocessor around the student's.

        Measured: same outputs as a hand-written per-view loop
        (``tests/test_distillers/test_cross_view_distiller.py``)."""
        if getattr(preprocessor, 'batch_augments', None):
            raise ValueError(
                'the student\'s data_preprocessor has batch_augments, which would '
                'transform the weak and the strong view differently; move them '
                'into the pipeline before MultiBranch')
        wrapper = TwoViewPreprocessor(dict(type='BaseDataPreprocessor'))
        wrapper.data_preprocessor = preprocessor  # the student's own, shared
        return wrapper

    def __call__(self, inputs, data_samples) -> Batch:
        """``{'weak': (N, 3, H, W), 'strong': ...}`` and ``{view: [N samples]}``
        -> a two-view :class:`Batch`, after checking that the views align."""
        if not isinstance(inputs, dict) or not isinstance(data_samples, dict):
            raise ValueError('CrossViewDistiller trains on two views per image, but got a '
                             f'single batch ({type(inputs).__name__}): {_PIPELINE_HINT}')
        missing = [v for v in VIEWS if v not in inputs or v not in data_samples]
        if missing:
            raise ValueError(f'the batch has views {sorted(inputs)}, missing {missing}: '
                             "MultiBranch's branch_field must be ['weak', 'strong']")
        weak, strong = inputs['weak'], inputs['strong']
        ws, ss = list(data_samples['weak']), list(data_samples['strong'])
        if weak.shape[0] == 0:
            raise ValueError('empty batch: the distiller received 0 images')
        if weak.shape != strong.shape or len(ws) != len(ss) or len(ws) != weak.shape[0]:
            raise ValueError(f'the views differ in size: weak {tuple(weak.shape)} with '
                             f'{len(ws)} samples, strong {tuple(strong.shape)} with {len(ss)}')
        for i, (a, b) in enumerate(zip(ws, ss)):
            if a.img_shape != b.img_shape:
                raise ValueError(f'image {i}: the views have sizes {a.img_shape} and '
                                 f'{b.img_shape}; resize before MultiBranch')
            if not self.geometric:
                self._check_same_boxes(i, a, b)
        homographies = torch.stack([relative_homography(a, b) for a, b in zip(ws, ss)]) \
            if self.geometric else None
        return Batch(torch.cat([weak, strong]), ws + ss, 2, homographies)

    @staticmethod
    def _check_same_boxes(i: int, a, b) -> None:
        ba, bb = a.gt_instances.bboxes, b.gt_instances.bboxes
        ba, bb = getattr(ba, 'tensor', ba), getattr(bb, 'tensor', bb)
        if ba.shape != bb.shape or not torch.allclose(ba, bb, atol=1e-3):
            raise ValueError(
                f'image {i} ({a.metainfo.get("img_path", "?")}): the strong view\'s '
                'boxes differ from the weak view\'s, so its pipeline moved pixels; '
                'use photometric ops only, or set cross_view.geometric=True and '
                "add 'homography_matrix' to PackDetInputs' meta_keys")


def relative_homography(sample_from, sample_to) -> Tensor:
    """3x3 matrix mapping pixel coordinates of one view onto another:
    ``H_to @ inv(H_from)`` from their ``homography_matrix`` metainfo."""
    mats = []
    for sample in (sample_from, sample_to):
        h = sample.metainfo.get('homography_matrix')
        if h is None:
            raise ValueError(
                'cross_view.geometric=True needs every view\'s homography_matrix: '
                "add 'homography_matrix' to PackDetInputs' meta_keys in both branches")
        mats.append(torch.as_tensor(h, dtype=torch.float64))
    return (mats[1] @ torch.linalg.inv(mats[0])).float()


def warp_dense(maps: Tensor, homographies: Tensor, input_size: Tuple[int, int]
               ) -> Tuple[Tensor, Tensor]:
    """Resample per-image maps of one view onto the grid of another.

    Location (i, j) of the target grid sits at pixel
    ``((j + 0.5) * W_in / W, (i + 0.5) * H_in / H)``; its pixel in the source
    view is ``homography @ (x, y, 1)``, read bilinearly from ``maps``.

    Args:
        maps (Tensor): (N, K, H, W), source view.
        homographies (Tensor): (N, 3, 3), target-view pixels -> source-view
            pixels.
        input_size (tuple): (H_in, W_in), the padded batch image size.

    Returns:
        tuple: warped (N, K, H, W) maps and an (N, H, W) float mask of the
        locations that fall inside the source map.
    """
    n, _, h, w = maps.shape
    h_in, w_in = input_size
    ys = (torch.arange(h, device=maps.device, dtype=torch.float32) + 0.5) * h_in / h
    xs = (torch.arange(w, device=maps.device, dtype=torch.float32) + 0.5) * w_in / w
    gy, gx = torch.meshgrid(ys, xs, indexing='ij')
    pts = torch.stack([gx, gy, torch.ones_like(gx)], dim=-1).reshape(1, -1, 3)
    src = pts @ homographies.to(maps.device, torch.float32).transpose(1, 2)
    src = src[..., :2] / src[..., 2:].clamp_min(1e-6)
    grid = torch.stack([2 * src[..., 0] / w_in - 1, 2 * src[..., 1] / h_in - 1], -1)
    grid = grid.reshape(n, h, w, 2)
    valid = (grid.abs() <= 1).all(dim=-1).float()
    warped = F.grid_sample(maps, grid.to(maps.dtype), mode='bilinear',
                           padding_mode='zeros', align_corners=False)
    return warped, valid


def project_rois(rois: Tensor, homographies: Tensor, samples: list) -> Tensor:
    """Boxes of ``rois`` (R, 5: image, x1, y1, x2, y2) moved into the other
    view; rows 0..N-1 of the batch are the weak view, N..2N-1 the strong."""
    from mmdet.structures.bbox import bbox_project
    n = homographies.shape[0]
    hom = homographies.to(rois.device)
    boxes = rois[:, 1:].clone()
    img = rois[:, 0].long()
    for i in range(n):
        for sel, mat in ((img == i, hom[i]), (img == n + i, torch.linalg.inv(hom[i]))):
            if sel.any():
                h, w = samples[i].img_shape[:2]
                boxes[sel] = bbox_project(rois[sel, 1:], mat, (h, w))
    return boxes


@MODELS.register_module()
class CrossViewTerm(DistillTerm):
    """CRLD's within-view and cross-view terms on a two-view batch.

    Returns ``loss_cv_within`` and ``loss_cv_cross``.

    Args:
        loss (dict): A :class:`CrossViewLoss` config; its ``kind`` is filled
            in from the head.
        head (str | dict): ``'auto'`` (the dense head's classification conv,
            or the RoI head of a two-stage detector) or ``dict(student=...,
            teacher=...)`` naming the classification convs of a dense head.
        student (nn.Module): The student detector (given by the distiller).
        teacher (nn.Module): The teacher detector (given by the distiller).
    """
    name = 'cross_view'
    keys = ('loss_cv_within', 'loss_cv_cross')

    def __init__(self, loss: dict, head='auto', student: nn.Module = None,
                 teacher: nn.Module = None):
        self.student, self.teacher = student, teacher
        self.roi = head == 'auto' and getattr(student, 'roi_head', None) is not None
        if self.roi:
            self._check_roi_heads()
            self.student_modules = set()
            self.teacher_modules = {'neck' if getattr(teacher, 'with_neck', False)
                                    else 'backbone'}
            self._roi_calls: Dict[str, list] = {}
            self._roi_active = False
            self._hook_student_roi_head()
        else:
            self.cls_names = self._dense_cls_names(head)
            self.student_modules = {self.cls_names[0]}
            self.teacher_modules = {self.cls_names[1]}
        loss_cfg = dict(loss)
        kind = 'softmax' if self.roi else 'sigmoid'
        if loss_cfg.setdefault('kind', kind) != kind:
            raise ValueError(f"cross_view.loss.kind={loss_cfg['kind']!r}, but the "
                             f"{'RoI' if self.roi else 'dense'} head gives {kind} logits")
        self.loss = MODELS.build(loss_cfg)
        if not isinstance(self.loss, CrossViewLoss):
            raise TypeError(f'cross_view.loss must be a CrossViewLoss, got '
                            f'{type(self.loss).__name__}')

    # -- build ---------------------------------------------------------------
    def _dense_cls_names(self, head) -> Tuple[str, str]:
        if head == 'auto':
            names = {who: self._dense_cls_name(model, who)
                     for who, model in (('student', self.student), ('teacher', self.teacher))}
        elif isinstance(head, dict) and set(head) == {'student', 'teacher'}:
            names = dict(head)
        else:
            raise ValueError("cross_view.head must be 'auto' or dict(student=..., teacher=...) "
                             f'naming the classification convs, got {head!r}')
        for who, model in (('student', self.student), ('teacher', self.teacher)):
            head_module = model.get_submodule(names[who].rsplit('.', 1)[0]) \
                if '.' in names[who] else None
            if head_module is not None and getattr(head_module, 'use_sigmoid_cls', True) is False:
                raise ValueError(f'cross_view: the {who}\'s {type(head_module).__name__} scores '
                                 'classes with a softmax; dense cross-view distillation reads '
                                 'sigmoid class scores (RetinaNet, FCOS, GFL, ATSS)')
        self._check_same_classes()
        return names['student'], names['teacher']

    @staticmethod
    def _dense_cls_name(model: nn.Module, who: str) -> str:
        head = getattr(model, 'bbox_head', None)
        if head is None:
            raise ValueError(f'cross_view: the {who} has neither a dense bbox_head nor a '
                             'roi_head; no logits to distil')
        for attr in _DENSE_CLS:
            if isinstance(getattr(head, attr, None), nn.Conv2d):
                return f'bbox_head.{attr}'  # softmax heads: refused by the caller
        raise ValueError(
            f'cross_view: cannot read the class logits of the {who}\'s '
            f'{type(head).__name__}: it has none of the convs {list(_DENSE_CLS)}. Name '
            "them with cross_view.head=dict(student='bbox_head.<conv>', teacher=...)")

    def _check_roi_heads(self) -> None:
        for who, model in (('student', self.student), ('teacher', self.teacher)):
            roi = getattr(model, 'roi_head', None)
            extractor = getattr(roi, 'bbox_roi_extractor', None)
            bbox_head = getattr(roi, 'bbox_head', None)
            if not isinstance(extractor, nn.Module) or isinstance(extractor, nn.ModuleList) \
                    or not isinstance(bbox_head, nn.Module) \
                    or isinstance(bbox_head, nn.ModuleList):
                raise ValueError(
                    f'cross_view: the {who}\'s {type(roi).__name__} is not a single-stage '
                    'RoI head (one bbox_roi_extractor and one bbox_head, as in Faster '
                    'R-CNN); cascades are not supported')
            loss_cls = getattr(bbox_head, 'loss_cls', None)
            if getattr(loss_cls, 'use_sigmoid', False) or \
                    getattr(bbox_head, 'custom_cls_channels', False):
                raise ValueError(f'cross_view: the {who}\'s RoI head does not score classes '
                                 'with a softmax over classes + background')
        self._check_same_classes()

    def _check_same_classes(self) -> None:
        s_cls, t_cls = num_classes_of(self.student), num_classes_of(self.teacher)
        if s_cls != t_cls:
            raise ValueError(f'cross_view: the student has num_classes={s_cls} and the '
                             f'teacher {t_cls}; logits are compared class by class')

    def build(self, probe: Probe) -> None:
        """Dense heads: the two class maps must have the same shapes."""
        if self.roi:
            return
        (s_name, t_name), shapes = self.cls_names, {}
        for who, name in zip(('student', 'teacher'), self.cls_names):
            shapes[who] = probe.shapes(who, name)
        if shapes['student'] != shapes['teacher']:
            raise ValueError(
                f'cross_view: the student\'s {s_name} gives {shapes["student"]} and the '
                f'teacher\'s {t_name} {shapes["teacher"]}; the heads need the same levels, '
                'strides, anchors per location and classes')

    def _hook_student_roi_head(self) -> None:
        roi = self.student.roi_head

        def keep_rois(module, args):
            if self._roi_active:
                self._roi_calls['rois'].append(args[1])

        def keep_scores(module, args, output):
            if self._roi_active:
                self._roi_calls['cls_score'].append(output[0])

        roi.bbox_roi_extractor.register_forward_pre_hook(keep_rois)
        roi.bbox_head.register_forward_hook(keep_scores)

    @contextmanager
    def recording(self):
        """For RoI heads: keep the student's sampled RoIs and their scores."""
        if not self.roi:
            yield
            return
        self._roi_calls = {'rois': [], 'cls_score': []}
        self._roi_active = True
        try:
            yield
        finally:
            self._roi_active = False
            self._roi_calls = {}

    # -- step ----------------------------------------------------------------
    def __call__(self, step: Step) -> Dict[str, Tensor]:
        if step.batch.num_views != 2:
            raise ValueError('the cross-view term needs a two-view batch (views=TwoViews())')
        terms = self._roi_terms(step) if self.roi else self._dense_terms(step)
        return dict(zip(self.keys, (terms['within'], terms['cross'])))

    def _dense_terms(self, step: Step) -> Dict[str, Tensor]:
        batch, (s_name, t_name) = step.batch, self.cls_names
        n, hom = batch.num_images, batch.homographies
        c = num_classes_of(self.student)
        rows = {k: [] for k in ('s_w', 's_s', 't_w', 't_s', 'valid')}
        for s, t in zip(step.student.get(s_name), step.teacher.get(t_name)):
            s_w, s_s, t_w, t_s = s[:n], s[n:], t[:n], t[n:]
            if hom is not None:
                s_s, valid = warp_dense(s_s, hom, batch.inputs.shape[-2:])
                t_s, _ = warp_dense(t_s, hom, batch.inputs.shape[-2:])
                a = s.shape[1] // c
                rows['valid'].append(valid[..., None].expand(-1, -1, -1, a).reshape(-1))
            for key, value in (('s_w', s_w), ('s_s', s_s), ('t_w', t_w), ('t_s', t_s)):
                rows[key].append(dense_rows(value, c))
        cat = {k: torch.cat(v) if v else None for k, v in rows.items()}
        valid = (cat['valid'], cat['valid']) if hom is not None else None
        return self.loss((cat['s_w'], cat['s_s']),
                         ((cat['t_w'], cat['t_w']), (cat['t_s'], cat['t_s'])), valid=valid)

    def _roi_terms(self, step: Step) -> Dict[str, Tensor]:
        batch, n = step.batch, step.batch.num_images
        if len(self._roi_calls.get('rois', [])) != 1 or len(self._roi_calls['cls_score']) != 1:
            raise RuntimeError('cross_view: expected one RoI head pass in the student\'s '
                               f'loss, saw {len(self._roi_calls.get("rois", []))}')
        rois, scores = self._roi_calls['rois'][0], self._roi_calls['cls_score'][0]
        feats = step.teacher.get(next(iter(self.teacher_modules)))
        img = rois[:, 0].long()
        other = rois.clone()
        other[:, 0] = ((img + n) % (2 * n)).to(rois.dtype)
        if batch.homographies is not None:
            other[:, 1:] = project_rois(rois, batch.homographies, batch.data_samples)
        with torch.no_grad():
            head = self.teacher.roi_head
            t_same = head._bbox_forward(feats, rois)['cls_score']
            t_other = head._bbox_forward(feats, other)['cls_score']
        is_weak = img < n
        t_weak = torch.where(is_weak[:, None], t_same, t_other)
        t_strong = torch.where(is_weak[:, None], t_other, t_same)
        w, s = is_weak, ~is_weak
        return self.loss(
            (scores[w], scores[s]), ((t_weak[w], t_weak[s]), (t_strong[w], t_strong[s])))


def cross_view_parts(cross_view: Optional[dict]) -> dict:
    """The ``views`` and ``terms`` of a config's ``cross_view=dict(loss, head,
    geometric)``, checked."""
    if not isinstance(cross_view, dict) or 'loss' not in cross_view:
        raise ValueError('CrossViewDistiller needs cross_view=dict(loss=dict('
                         "type='CrossViewLoss', ...)); got " + repr(cross_view))
    unknown = sorted(set(cross_view) - set(_CV_KEYS))
    if unknown:
        raise ValueError(f'cross_view: unknown key(s) {unknown}; allowed: {list(_CV_KEYS)}')
    return dict(views=TwoViews(cross_view.get('geometric', False)),
                terms=[dict(type='CrossViewTerm', loss=cross_view['loss'],
                            head=cross_view.get('head', 'auto'))])


@MODELS.register_module()
class CrossViewDistiller(DetectionDistiller):
    """``DetectionDistiller(views=TwoViews(geometric), terms=[CrossViewTerm(loss,
    head)])``, the registered name of CRLD's configs.

    Args:
        cross_view (dict): ``loss`` (a :class:`CrossViewLoss` config),
            ``head`` (see :class:`CrossViewTerm`) and ``geometric`` (see
            :class:`TwoViews`).
        **kwargs: :class:`DetectionDistiller` arguments (an ``objective``
            too, e.g. group DRO).
    """

    def __init__(self, *args, cross_view: Optional[dict] = None, **kwargs):
        super().__init__(*args, **cross_view_parts(cross_view), **kwargs)
