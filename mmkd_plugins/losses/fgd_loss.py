"""FGD: focal and global feature distillation for detectors.

Yang et al., "Focal and Global Knowledge Distillation for Detectors",
CVPR 2022.

The loss of one level has four parts, built bottom-up in this file:

* focal imitation (:func:`fgd_feature_loss`): squared feature error,
  weighted by the teacher's spatial and channel attention and split into a
  foreground part (inside ground-truth boxes, :func:`fgd_masks`) and a
  background part;
* attention imitation (:func:`fgd_mask_loss`): the student's attention maps
  should match the teacher's;
* global relation (:func:`fgd_relation_loss`): the outputs of a learnable
  global-context block (:class:`GlobalContextBlock`) applied to each side
  should match.
"""
from typing import List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmdet.registry import MODELS
from mmdet.structures.bbox import get_box_tensor
from ..checks import check_number, check_positive_int
from .base import BaseDistillLoss


def spatial_channel_attention(feat: Tensor,
                              temperature: float) -> Tuple[Tensor, Tensor]:
    """Spatial and channel attention of a feature map.

    ``A_S = H*W * softmax_HW(mean_C |F| / T)`` and
    ``A_C = C * softmax_C(mean_HW |F| / T)``. The factors H*W and C make
    each map average 1, so uniform attention leaves the error unscaled.

    Args:
        feat (Tensor): (N, C, H, W).
        temperature (float): Softmax temperature, > 0.

    Returns:
        tuple[Tensor, Tensor]: Spatial attention (N, 1, H, W) and channel
        attention (N, C, 1, 1).
    """
    n, c, h, w = feat.shape
    magnitude = feat.abs()
    spatial_logits = magnitude.mean(dim=1).reshape(n, h * w) / temperature
    spatial = (h * w) * F.softmax(spatial_logits, dim=1)
    channel_logits = magnitude.mean(dim=(2, 3)) / temperature
    channel = c * F.softmax(channel_logits, dim=1)
    return spatial.reshape(n, 1, h, w), channel.reshape(n, c, 1, 1)


def boxes_to_cells(boxes: Tensor, input_hw: Sequence[int],
                   feat_hw: Sequence[int]) -> Tuple[Tensor, ...]:
    """Map xyxy boxes in input pixels to half-open cell ranges on a grid.

    A box covers columns ``floor(x1 / W_in * W)`` up to (excluding)
    ``ceil(x2 / W_in * W)``, and likewise for rows, clipped to the grid. A
    box always covers at least one cell, so that tiny or out-of-image boxes
    still count as foreground on coarse levels.

    Args:
        boxes (Tensor): (K, 4) xyxy in the coordinates of the padded input.
        input_hw (Sequence[int]): Padded input size (H_in, W_in).
        feat_hw (Sequence[int]): Feature grid size (H, W).

    Returns:
        tuple[Tensor]: ``(x0, x1, y0, y1)``, each a (K,) int64 tensor with
        ``0 <= x0 < x1 <= W`` and ``0 <= y0 < y1 <= H``.
    """
    h_in, w_in = input_hw
    h, w = feat_hw
    boxes = boxes.float()
    x0 = torch.floor(boxes[:, 0] / w_in * w).long().clamp(0, w - 1)
    y0 = torch.floor(boxes[:, 1] / h_in * h).long().clamp(0, h - 1)
    x1 = torch.ceil(boxes[:, 2] / w_in * w).long().clamp(max=w)
    y1 = torch.ceil(boxes[:, 3] / h_in * h).long().clamp(max=h)
    return x0, torch.maximum(x1, x0 + 1), y0, torch.maximum(y1, y0 + 1)


def fgd_masks(boxes_list: Sequence[Tensor],
              batch_input_shape: Sequence[int],
              feat_hw: Sequence[int],
              device: Optional[torch.device] = None) -> Tuple[Tensor, Tensor]:
    """Foreground and background masks of FGD on one feature grid.

    Each box paints its cells with ``1 / (its area in cells)``, so that small
    and large objects contribute equally; where boxes overlap the larger
    value (the smaller box) wins. The foreground mask is not renormalised.
    The background mask is 1 outside every box, divided by its per-image
    sum so that each image's background contributes like one object; an
    image whose grid is fully covered gets an all-zero background mask.

    Args:
        boxes_list (Sequence[Tensor]): N tensors of shape (K_i, 4), xyxy in
            the coordinates of the padded batch input; K_i may be 0.
        batch_input_shape (Sequence[int]): Padded input size (H_in, W_in).
        feat_hw (Sequence[int]): Feature grid size (H, W).
        device (torch.device, optional): Device of the masks. Defaults to
            the device of the first box tensor.

    Returns:
        tuple[Tensor, Tensor]: ``(fg, bg)``, each (N, 1, H, W) float32.
    """
    h, w = int(feat_hw[0]), int(feat_hw[1])
    if device is None:
        device = boxes_list[0].device if len(boxes_list) else 'cpu'
    fg = torch.zeros(len(boxes_list), 1, h, w, device=device)
    rows = torch.arange(h, device=device).reshape(1, h, 1)
    cols = torch.arange(w, device=device).reshape(1, 1, w)
    for i, boxes in enumerate(boxes_list):
        if boxes.numel() == 0:
            continue
        x0, x1, y0, y1 = (v.to(device).reshape(-1, 1, 1)
                          for v in boxes_to_cells(boxes, batch_input_shape,
                                                  (h, w)))
        inside = ((cols >= x0) & (cols < x1) & (rows >= y0) & (rows < y1))
        value = 1.0 / ((x1 - x0) * (y1 - y0)).float()
        fg[i, 0] = (inside.float() * value).amax(dim=0)
    bg = (fg == 0).float()
    # The count is an integer >= 1 unless the image has no background, in
    # which case the mask is all zeros and clamping leaves it so.
    bg = bg / bg.sum(dim=(2, 3), keepdim=True).clamp_min(1.0)
    return fg, bg


def fgd_feature_loss(student: Tensor,
                     teacher: Tensor,
                     fg_mask: Tensor,
                     bg_mask: Tensor,
                     spatial_att: Tensor,
                     channel_att: Tensor,
                     weight: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
    """Focal imitation terms of FGD.

    ``L_fg = sum((F_S - F_T)^2 * A_S * A_C * M_fg * w) / N`` and ``L_bg``
    likewise with ``M_bg``; the attention comes from the teacher.

    Args:
        student (Tensor): (N, C, H, W).
        teacher (Tensor): (N, C, H, W).
        fg_mask (Tensor): (N, 1, H, W), see :func:`fgd_masks`.
        bg_mask (Tensor): (N, 1, H, W).
        spatial_att (Tensor): Teacher spatial attention (N, 1, H, W).
        channel_att (Tensor): Teacher channel attention (N, C, 1, 1).
        weight (Tensor, optional): Non-negative, broadcastable to
            (N, C, H, W); multiplies each element's term, unnormalised.

    Returns:
        tuple[Tensor, Tensor]: Scalars ``(L_fg, L_bg)``.
    """
    scaled_err = (student - teacher).pow(2) * spatial_att * channel_att
    if weight is not None:
        scaled_err = scaled_err * weight
    n = student.shape[0]
    return (scaled_err * fg_mask).sum() / n, (scaled_err * bg_mask).sum() / n


def fgd_mask_loss(student_att: Tuple[Tensor, Tensor],
                  teacher_att: Tuple[Tensor, Tensor]) -> Tensor:
    """Attention imitation term of FGD.

    ``L_mask = (sum|A_C^S - A_C^T| + sum|A_S^S - A_S^T|) / N``.

    Args:
        student_att (tuple[Tensor, Tensor]): Student (spatial (N, 1, H, W),
            channel (N, C, 1, 1)) attention.
        teacher_att (tuple[Tensor, Tensor]): Teacher attention, same shapes.

    Returns:
        Tensor: Scalar.
    """
    (s_spatial, s_channel), (t_spatial, t_channel) = student_att, teacher_att
    n = s_spatial.shape[0]
    return ((s_channel - t_channel).abs().sum() +
            (s_spatial - t_spatial).abs().sum()) / n


def fgd_relation_loss(student_ctx: Tensor, teacher_ctx: Tensor) -> Tensor:
    """Global relation term of FGD: ``sum((GC_s(F_S) - GC_t(F_T))^2) / N``.

    Args:
        student_ctx (Tensor): Student global-context output (N, C, H, W).
        teacher_ctx (Tensor): Teacher global-context output (N, C, H, W).

    Returns:
        Tensor: Scalar.
    """
    return (student_ctx - teacher_ctx).pow(2).sum() / student_ctx.shape[0]


class GlobalContextBlock(nn.Module):
    """GcBlock-style global context module used by FGD's relation term.

    Pools the map into one context vector with learned spatial weights
    (softmax over H*W of a 1x1 conv), transforms it with a bottleneck
    ``conv1x1(C->C/2) -> LayerNorm -> ReLU -> conv1x1(C/2->C)`` and adds it
    to every position (Cao et al., "GCNet", ICCVW 2019). The last conv
    starts at zero, so the block is the identity at initialisation.

    Args:
        channels (int): C. The bottleneck has ``max(C // 2, 1)`` channels.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = max(channels // 2, 1)
        self.context_logits = nn.Conv2d(channels, 1, kernel_size=1)
        self.transform = nn.Sequential(
            nn.Conv2d(channels, hidden, kernel_size=1),
            nn.LayerNorm([hidden, 1, 1]),
            nn.ReLU(),
            nn.Conv2d(hidden, channels, kernel_size=1),
        )
        nn.init.zeros_(self.transform[-1].weight)
        nn.init.zeros_(self.transform[-1].bias)

    def forward(self, feat: Tensor) -> Tensor:
        """Add the transformed global context to every position.

        Args:
            feat (Tensor): (N, C, H, W).

        Returns:
            Tensor: (N, C, H, W).
        """
        n, c, h, w = feat.shape
        attn = F.softmax(self.context_logits(feat).reshape(n, h * w, 1), dim=1)
        context = torch.bmm(feat.reshape(n, c, h * w), attn)  # (N, C, 1)
        return feat + self.transform(context.reshape(n, c, 1, 1))


def _gt_boxes(data_samples: Sequence) -> List[Tensor]:
    return [get_box_tensor(ds.gt_instances.bboxes) for ds in data_samples]


@MODELS.register_module()
class FGDLoss(BaseDistillLoss):
    """Focal and Global Distillation (FGD).

    Yang et al., "Focal and Global Knowledge Distillation for Detectors",
    CVPR 2022. Per level::

        alpha_fg * L_fg + beta_bg * L_bg + gamma_mask * L_mask
            + lambda_rela * L_rela

    with the terms of :func:`fgd_feature_loss`, :func:`fgd_mask_loss` and
    :func:`fgd_relation_loss`. Published RetinaNet defaults (used here):
    temperature 0.5, alpha 1e-3, beta 5e-4, gamma 1e-3, lambda 5e-6.

    The module owns one student-side and one teacher-side
    :class:`GlobalContextBlock` per level. Both are trained by the relation
    term: the teacher block sees the detached teacher feature, so the
    teacher network itself receives no gradient.

    Ground-truth boxes are read from ``data_samples[i].gt_instances.bboxes``
    and mapped to each level with
    ``data_samples[0].metainfo['batch_input_shape']``, the padded size that
    the feature grid spans. ``weights`` multiply the elements' terms of
    ``L_fg`` and ``L_bg`` (the meaning of ``losses/base.py``); the attention
    and relation terms compare whole maps and no weight reaches them.

    Args:
        in_channels (int): Channels C of every distilled level.
        num_levels (int): Number of levels the loss is called with.
            Defaults to 1.
        temperature (float): Attention temperature, > 0. Defaults to 0.5.
        alpha_fg (float): Weight of L_fg, >= 0. Defaults to 1e-3.
        beta_bg (float): Weight of L_bg, >= 0. Defaults to 5e-4.
        gamma_mask (float): Weight of L_mask, >= 0. Defaults to 1e-3.
        lambda_rela (float): Weight of L_rela, >= 0. Defaults to 5e-6.
        loss_weight (float): Multiplier of the summed level losses.
            Defaults to 1.0.
    """

    def __init__(self,
                 in_channels: int,
                 num_levels: int = 1,
                 temperature: float = 0.5,
                 alpha_fg: float = 1e-3,
                 beta_bg: float = 5e-4,
                 gamma_mask: float = 1e-3,
                 lambda_rela: float = 5e-6,
                 loss_weight: float = 1.0) -> None:
        super().__init__(loss_weight=loss_weight)
        self.in_channels = check_positive_int('in_channels', in_channels)
        self.num_levels = check_positive_int('num_levels', num_levels)
        self.temperature = check_number(
            'temperature', temperature, inclusive=False)
        self.alpha_fg = check_number('alpha_fg', alpha_fg)
        self.beta_bg = check_number('beta_bg', beta_bg)
        self.gamma_mask = check_number('gamma_mask', gamma_mask)
        self.lambda_rela = check_number('lambda_rela', lambda_rela)
        self.student_context = nn.ModuleList(
            GlobalContextBlock(in_channels) for _ in range(num_levels))
        self.teacher_context = nn.ModuleList(
            GlobalContextBlock(in_channels) for _ in range(num_levels))

    def check_inputs(self, student, data_samples) -> None:
        if data_samples is None:
            raise ValueError('FGDLoss needs data_samples with ground-truth '
                             'boxes, got None')
        if len(student) != self.num_levels:
            raise ValueError(f'FGDLoss was built with num_levels='
                             f'{self.num_levels} but got {len(student)} '
                             'levels')
        n = student[0].shape[0]
        if len(data_samples) != n:
            raise ValueError(f'got {len(data_samples)} data_samples for a '
                             f'batch of {n}')
        for i, feat in enumerate(student):
            if feat.shape[1] != self.in_channels:
                raise ValueError(f'level {i}: FGDLoss was built with '
                                 f'in_channels={self.in_channels} but the '
                                 f'features have {feat.shape[1]}')
        if 'batch_input_shape' not in data_samples[0].metainfo:
            raise ValueError("data_samples[0].metainfo has no "
                             "'batch_input_shape'")

    def level_loss(self, level, student, teacher, weight, data_samples):
        fg, bg = fgd_masks(
            _gt_boxes(data_samples),
            data_samples[0].metainfo['batch_input_shape'],
            student.shape[-2:],
            device=student.device)
        teacher_att = spatial_channel_attention(teacher, self.temperature)
        student_att = spatial_channel_attention(student, self.temperature)
        loss_fg, loss_bg = fgd_feature_loss(
            student, teacher, fg, bg, *teacher_att, weight=weight)
        loss_mask = fgd_mask_loss(student_att, teacher_att)
        loss_rela = fgd_relation_loss(
            self.student_context[level](student),
            self.teacher_context[level](teacher))
        return (self.alpha_fg * loss_fg + self.beta_bg * loss_bg +
                self.gamma_mask * loss_mask + self.lambda_rela * loss_rela)

    def extra_repr(self) -> str:
        return (f'in_channels={self.in_channels}, '
                f'num_levels={self.num_levels}, '
                f'temperature={self.temperature}, alpha_fg={self.alpha_fg}, '
                f'beta_bg={self.beta_bg}, gamma_mask={self.gamma_mask}, '
                f'lambda_rela={self.lambda_rela}, {super().extra_repr()}')
