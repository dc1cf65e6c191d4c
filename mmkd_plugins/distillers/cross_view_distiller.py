"""CrossViewDistiller: CRLD's weak/strong cross-view consistency for detectors.

Every training image arrives as two spatially aligned views (the train
pipeline ends in MMDetection's ``MultiBranch`` with branches ``weak`` and
``strong``, see ``configs/cross_view/``). Student and teacher each run once
on the 2N images (views concatenated), so:

* the student's detection loss covers both views (one loss over 2N images:
  the mean of the two views', on the scale of single-view training);
* every ``distill_losses`` entry (FGD, FGD + UET, ...) is computed on both
  views, exactly as in :class:`DetectionDistiller`;
* :class:`~mmkd_plugins.losses.CrossViewLoss` adds the within-view and
  cross-view terms on the classification logits:

  - dense heads (RetinaNet, FCOS, GFL, ATSS): the sigmoid class map of every
    FPN level, one row per anchor location;
  - RoI heads (Faster R-CNN): the teacher's RoI head classifies the
    student's sampled proposals, on its weak and on its strong view.

With ``geometric=True`` the strong pipeline may move pixels (Rotate, Shear,
Translate): the transform is read from each view's ``homography_matrix`` and
the strong view's dense maps are warped onto the weak view's grid (RoIs are
projected between the views); locations that fall outside the other view
are left out.

Config sketch::

    model = dict(
        type='CrossViewDistiller', student=..., teacher=..., teacher_ckpt=...,
        cross_view=dict(loss=dict(type='CrossViewLoss', within_weight=2.0,
                                  cross_weight=0.5)),
        distill_losses=dict(...))  # optional feature losses
"""
from contextlib import contextmanager, nullcontext
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseDataPreprocessor
from torch import Tensor, nn

from mmdet.registry import MODELS
from ..losses.cross_view_loss import CrossViewLoss, dense_rows
from .detection_distiller import DetectionDistiller, num_classes_of

VIEWS = ('weak', 'strong')
_CV_KEYS = ('loss', 'head', 'geometric')
# Classification conv of each supported sigmoid dense head.
_DENSE_CLS = ('retina_cls', 'gfl_cls', 'atss_cls', 'conv_cls')


class TwoViewDataPreprocessor(BaseDataPreprocessor):
    """Runs the student's preprocessor on each view of a two-view batch.

    In training, ``data['inputs']`` is ``{'weak': [...], 'strong': [...]}``
    (``MultiBranch`` + ``pseudo_collate``); each view goes through the
    wrapped preprocessor and the result keeps that structure. Anything else
    (validation, test) is passed to the wrapped preprocessor unchanged.

    Args:
        preprocessor (nn.Module): The student's ``DetDataPreprocessor``.
    """

    def __init__(self, preprocessor: nn.Module):
        super().__init__()
        if getattr(preprocessor, 'batch_augments', None):
            raise ValueError(
                'the student\'s data_preprocessor has batch_augments, which would '
                'transform the weak and the strong view differently; move them '
                'into the pipeline before MultiBranch')
        self.preprocessor = preprocessor

    def forward(self, data: dict, training: bool = False) -> dict:
        inputs = data.get('inputs') if isinstance(data, dict) else None
        if not (training and isinstance(inputs, dict)):
            return self.preprocessor(data, training)
        out = {'inputs': {}, 'data_samples': {}}
        for view in inputs:
            one = self.preprocessor(
                {'inputs': inputs[view], 'data_samples': data['data_samples'][view]}, True)
            out['inputs'][view] = one['inputs']
            out['data_samples'][view] = one['data_samples']
        return out

    # DetDataPreprocessor attributes some tools read (mean, std, ...).
    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(super().__getattr__('preprocessor'), name)


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


@MODELS.register_module()
class CrossViewDistiller(DetectionDistiller):
    """A :class:`DetectionDistiller` trained on weak and strong views with
    CRLD's within-view and cross-view logit distillation.

    Args:
        cross_view (dict): ``loss``: a :class:`CrossViewLoss` config (its
            ``kind`` is filled in from the head); ``head``: ``'auto'``
            (default; the dense head's classification conv, or the RoI head
            of a two-stage detector) or ``dict(student=..., teacher=...)``
            naming the classification convs of a dense head; ``geometric``
            (bool, default False): whether the strong view may be moved
            geometrically (see the module docstring).
        **kwargs: :class:`DetectionDistiller` arguments.
    """

    def __init__(self, *args, cross_view: Optional[dict] = None, **kwargs):
        if not isinstance(cross_view, dict) or 'loss' not in cross_view:
            raise ValueError('CrossViewDistiller needs cross_view=dict(loss=dict('
                             "type='CrossViewLoss', ...)); got " + repr(cross_view))
        unknown = sorted(set(cross_view) - set(_CV_KEYS))
        if unknown:
            raise ValueError(f'cross_view: unknown key(s) {unknown}; allowed: {list(_CV_KEYS)}')
        # Read by _record_names(), which runs inside the parent's __init__.
        self.__dict__['_cv_cfg'] = {'head': 'auto', 'geometric': False, **cross_view}
        super().__init__(*args, **kwargs)
        cfg = self._cv_cfg
        self.geometric = bool(cfg['geometric'])
        loss_cfg = dict(cfg['loss'])
        kind = 'softmax' if self._cv_roi else 'sigmoid'
        if loss_cfg.setdefault('kind', kind) != kind:
            raise ValueError(f"cross_view.loss.kind={loss_cfg['kind']!r}, but the "
                             f"{'RoI' if self._cv_roi else 'dense'} head gives {kind} logits")
        loss = MODELS.build(loss_cfg)
        if not isinstance(loss, CrossViewLoss):
            raise TypeError(f'cross_view.loss must be a CrossViewLoss, got {type(loss).__name__}')
        self.cross_view_loss = loss
        self.data_preprocessor = TwoViewDataPreprocessor(self.data_preprocessor)
        self._views = None  # (number of images per view, samples) during loss()
        self._roi_calls: Dict[str, list] = {}
        self._roi_active = False
        if self._cv_roi:
            self._hook_student_roi_head()

    # -- build ---------------------------------------------------------------
    def _record_names(self):
        s_names, t_names = super()._record_names()
        head = self._cv_cfg['head']
        self.__dict__['_cv_roi'] = False
        if head == 'auto' and getattr(self.student, 'roi_head', None) is not None:
            self._check_roi_heads()
            self.__dict__['_cv_roi'] = True
            self.__dict__['_cv_names'] = None
            t_names.add('neck' if getattr(self.teacher, 'with_neck', False) else 'backbone')
            return s_names, t_names
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
        self.__dict__['_cv_names'] = (names['student'], names['teacher'])
        return s_names | {names['student']}, t_names | {names['teacher']}

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

    def _check_probe(self, s_shapes, t_shapes) -> None:
        super()._check_probe(s_shapes, t_shapes)
        if self._cv_roi:
            return
        s_name, t_name = self._cv_names
        if s_shapes[s_name] != t_shapes[t_name]:
            raise ValueError(
                f'cross_view: the student\'s {s_name} gives {s_shapes[s_name]} and the '
                f'teacher\'s {t_name} {t_shapes[t_name]}; the heads need the same levels, '
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
    def _record_rois(self):
        self._roi_calls = {'rois': [], 'cls_score': []}
        self._roi_active = True
        try:
            yield
        finally:
            self._roi_active = False

    # -- training ------------------------------------------------------------
    def loss(self, inputs, data_samples) -> Dict[str, Tensor]:
        """Student detection losses on both views, the ``distill_losses`` on
        both views, and ``loss_cv_within`` / ``loss_cv_cross``.

        Args:
            inputs (dict): ``{'weak': (N, 3, H, W), 'strong': (N, 3, H, W)}``.
            data_samples (dict): ``{'weak': [N samples], 'strong': [N]}``.
        """
        x, samples = self._join_views(inputs, data_samples)
        self._views = (x.shape[0] // 2, samples)
        try:
            with self._record_rois() if self._cv_roi else nullcontext():
                return super().loss(x, samples)
        finally:
            self._views = None
            self._roi_calls = {}

    def _join_views(self, inputs, data_samples) -> Tuple[Tensor, list]:
        if not isinstance(inputs, dict) or not isinstance(data_samples, dict):
            raise ValueError(
                'CrossViewDistiller trains on two views per image, but got a single batch '
                f'({type(inputs).__name__}): end the train pipeline with '
                "dict(type='MultiBranch', branch_field=['weak', 'strong'], weak=[...], "
                'strong=[...]) (see configs/cross_view/)')
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
                ba, bb = a.gt_instances.bboxes, b.gt_instances.bboxes
                ba = getattr(ba, 'tensor', ba)
                bb = getattr(bb, 'tensor', bb)
                if ba.shape != bb.shape or not torch.allclose(ba, bb, atol=1e-3):
                    raise ValueError(
                        f'image {i} ({a.metainfo.get("img_path", "?")}): the strong view\'s '
                        'boxes differ from the weak view\'s, so its pipeline moved pixels; '
                        'use photometric ops only, or set cross_view.geometric=True and '
                        "add 'homography_matrix' to PackDetInputs' meta_keys")
        return torch.cat([weak, strong]), ws + ss

    def _distill(self, inputs: Tensor, data_samples) -> Dict[str, Tensor]:
        out = super()._distill(inputs, data_samples)  # runs the teacher, if enabled
        scale = float(self.distill_loss_scale)
        if not self.distill_enabled or scale == 0 or self._views is None:
            zero = inputs.new_zeros(())
            out.update(loss_cv_within=zero, loss_cv_cross=zero)
            return out
        terms = self._roi_terms() if self._cv_roi else self._dense_terms(inputs)
        out.update(loss_cv_within=terms['within'] * scale, loss_cv_cross=terms['cross'] * scale)
        return out

    def _homographies(self, samples: list, n: int) -> Tensor:
        """(N, 3, 3): weak-view pixels -> strong-view pixels, per image."""
        return torch.stack([relative_homography(samples[i], samples[n + i]) for i in range(n)])

    def _dense_terms(self, inputs: Tensor) -> Dict[str, Tensor]:
        n, samples = self._views
        s_name, t_name = self._cv_names
        c = num_classes_of(self.student)
        hom = self._homographies(samples, n) if self.geometric else None
        rows = {k: [] for k in ('s_w', 's_s', 't_w', 't_s', 'valid')}
        for s, t in zip(self._student_rec.get(s_name), self._teacher_rec.get(t_name)):
            s_w, s_s, t_w, t_s = s[:n], s[n:], t[:n], t[n:]
            if hom is not None:
                s_s, valid = warp_dense(s_s, hom, inputs.shape[-2:])
                t_s, _ = warp_dense(t_s, hom, inputs.shape[-2:])
                a = s.shape[1] // c
                rows['valid'].append(valid[..., None].expand(-1, -1, -1, a).reshape(-1))
            for key, value in (('s_w', s_w), ('s_s', s_s), ('t_w', t_w), ('t_s', t_s)):
                rows[key].append(dense_rows(value, c))
        cat = {k: torch.cat(v) if v else None for k, v in rows.items()}
        valid = (cat['valid'], cat['valid']) if hom is not None else None
        return self.cross_view_loss(
            (cat['s_w'], cat['s_s']),
            ((cat['t_w'], cat['t_w']), (cat['t_s'], cat['t_s'])), valid=valid)

    def _roi_terms(self) -> Dict[str, Tensor]:
        n, samples = self._views
        if len(self._roi_calls.get('rois', [])) != 1 or len(self._roi_calls['cls_score']) != 1:
            raise RuntimeError('cross_view: expected one RoI head pass in the student\'s '
                               f'loss, saw {len(self._roi_calls.get("rois", []))}')
        rois, scores = self._roi_calls['rois'][0], self._roi_calls['cls_score'][0]
        feats = self._teacher_rec.get('neck' if getattr(self.teacher, 'with_neck', False)
                                      else 'backbone')
        img = rois[:, 0].long()
        other = rois.clone()
        other[:, 0] = ((img + n) % (2 * n)).to(rois.dtype)
        if self.geometric:
            other[:, 1:] = self._project_rois(rois, samples, n)
        with torch.no_grad():
            head = self.teacher.roi_head
            t_same = head._bbox_forward(feats, rois)['cls_score']
            t_other = head._bbox_forward(feats, other)['cls_score']
        is_weak = img < n
        t_weak = torch.where(is_weak[:, None], t_same, t_other)
        t_strong = torch.where(is_weak[:, None], t_other, t_same)
        w, s = is_weak, ~is_weak
        return self.cross_view_loss(
            (scores[w], scores[s]), ((t_weak[w], t_weak[s]), (t_strong[w], t_strong[s])))

    def _project_rois(self, rois: Tensor, samples: list, n: int) -> Tensor:
        """Boxes of ``rois`` moved into the other view (geometric=True)."""
        from mmdet.structures.bbox import bbox_project
        hom = self._homographies(samples, n).to(rois.device)
        boxes = rois[:, 1:].clone()
        img = rois[:, 0].long()
        for i in range(n):
            for sel, mat in ((img == i, hom[i]), (img == n + i, torch.linalg.inv(hom[i]))):
                if sel.any():
                    h, w = samples[i].img_shape[:2]
                    boxes[sel] = bbox_project(rois[sel, 1:], mat, (h, w))
        return boxes

    def _distill_parameters(self):
        yield from super()._distill_parameters()
        yield from self.cross_view_loss.parameters()
