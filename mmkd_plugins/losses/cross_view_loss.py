"""Cross-view consistency distillation (CRLD) on detector logits.

Zhang et al., "Cross-View Consistency Regularisation for Knowledge
Distillation", ACM MM 2024. The student and the teacher each see a weak and
a strong view of every image. Per prediction row (a dense head's anchor
location, or a sampled RoI), with ``KD(a, b)`` the temperature-scaled KL of
the student ``a`` from the teacher ``b`` and the teacher confidence masks
``m_w = [conf(t_weak) >= tau_weak]``, ``m_s = [conf(t_strong) >= tau_strong]``::

    L_within = within_weight * (mean_w(m_w KD(s_w, t_w)) + mean_s(m_w KD(s_s, t_s)))
    L_cross  = cross_weight  * (mean_s(m_s KD(s_s, t_w)) + mean_w(m_s KD(s_w, t_s)))

``mean_v`` divides by all rows of student view ``v`` (masked rows count in
the denominator, as in the paper). Two kinds of logits:

* ``'sigmoid'`` (dense heads: RetinaNet, FCOS, GFL, ATSS): ``KD`` is the
  per-class binary KL summed over classes, and a location's confidence
  counts the background: ``conf = max(max_c p_c, prod_c (1 - p_c))``, so a
  location the teacher is sure is empty is confident too
  (:func:`sigmoid_confidence`).
* ``'softmax'`` (RoI heads, classes + background): the paper's form,
  ``conf = max_c softmax(z)_c``.

The masks are computed at temperature 1 from the teacher's logits; the KL at
``temperature`` and multiplied by its square. Detector-specific choices are
documented in ``docs/cross_view.md``.
"""
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmdet.registry import MODELS
from ..checks import check_choice, check_number
from .dense_kd_loss import binary_kl

KINDS = ('sigmoid', 'softmax')


def softmax_kl(student: Tensor, teacher: Tensor, temperature: float = 1.0) -> Tensor:
    """Per-row ``T^2 KL(softmax(t/T) || softmax(s/T))`` over the last dim.

    Args:
        student (Tensor): (M, K) logits.
        teacher (Tensor): (M, K) logits.
        temperature (float): > 0.

    Returns:
        Tensor: (M, ).
    """
    log_ps = F.log_softmax(student / temperature, dim=-1)
    log_pt = F.log_softmax(teacher / temperature, dim=-1)
    return (log_pt.exp() * (log_pt - log_ps)).sum(-1) * temperature**2


def sigmoid_confidence(logits: Tensor) -> Tensor:
    """A location's confidence from per-class sigmoid logits.

    ``max(max_c p_c, prod_c (1 - p_c))``: the probability of the most likely
    class, or of "no class at all" (independent Bernoullis), whichever is
    larger. A location the model is sure is background is confident.

    Args:
        logits (Tensor): (M, C).

    Returns:
        Tensor: (M, ) in [0, 1].
    """
    fg = torch.sigmoid(logits).amax(dim=-1)
    bg = F.logsigmoid(-logits).sum(dim=-1).exp()
    return torch.maximum(fg, bg)


def softmax_confidence(logits: Tensor) -> Tensor:
    """``max_k softmax(z)_k`` of (M, K) logits (classes + background): (M, )."""
    return torch.softmax(logits, dim=-1).amax(dim=-1)


def _row_kl(kind: str, student: Tensor, teacher: Tensor, temperature: float) -> Tensor:
    if kind == 'sigmoid':
        return binary_kl(student, teacher, temperature).sum(-1)
    return softmax_kl(student, teacher, temperature)


def _confidence(kind: str, logits: Tensor) -> Tensor:
    return sigmoid_confidence(logits) if kind == 'sigmoid' else softmax_confidence(logits)


def _masked_mean(values: Tensor, mask: Tensor, valid: Optional[Tensor]) -> Tensor:
    # Rows below the threshold count in the denominator (paper: the mean
    # divides by the whole batch); invalid rows (warped out of the image)
    # count nowhere.
    if valid is None:
        return (values * mask).sum() / max(values.numel(), 1)
    return (values * mask * valid).sum() / valid.sum().clamp_min(1.)


def cross_view_terms(student: Tuple[Tensor, Tensor],
                     teacher_weak: Tuple[Tensor, Tensor],
                     teacher_strong: Tuple[Tensor, Tensor],
                     kind: str = 'sigmoid',
                     temperature: float = 1.0,
                     tau_weak: float = 0.9,
                     tau_strong: float = 0.2,
                     valid: Optional[Tuple[Optional[Tensor], Optional[Tensor]]] = None
                     ) -> Tuple[Tensor, Tensor]:
    """Within-view and cross-view terms (unweighted) of the CRLD loss.

    Rows of the student's two views may differ (RoI heads sample their own
    proposals per view): the teacher's logits are given at the rows of each
    student view, from both of the teacher's views.

    Args:
        student (tuple[Tensor, Tensor]): ``(s_weak, s_strong)``, (M_w, K) and
            (M_s, K) logits of the student on its weak and strong view.
        teacher_weak (tuple[Tensor, Tensor]): The teacher's weak-view logits
            at the rows of ``s_weak`` and at those of ``s_strong``.
        teacher_strong (tuple[Tensor, Tensor]): The teacher's strong-view
            logits at the same two row sets.
        kind (str): ``'sigmoid'`` (K = classes) or ``'softmax'`` (K =
            classes + background).
        temperature (float): KL temperature.
        tau_weak (float): Threshold of the weak-view confidence mask.
        tau_strong (float): Threshold of the strong-view confidence mask.
        valid (tuple, optional): Per view, None or a (M_v, ) 0/1 float mask
            of rows to use at all (e.g. locations warped outside the image).

    Returns:
        tuple[Tensor, Tensor]: ``(within, cross)`` scalars: the sums over the
        two student views of the masked means.
    """
    valid = valid or (None, None)
    within, cross = [], []
    for v, s in enumerate(student):
        t_w, t_s = teacher_weak[v].detach().float(), teacher_strong[v].detach().float()
        s = s.float()
        with torch.no_grad():
            m_w = (_confidence(kind, t_w) >= tau_weak).float()
            m_s = (_confidence(kind, t_s) >= tau_strong).float()
        same, other = (t_w, t_s) if v == 0 else (t_s, t_w)
        within.append(_masked_mean(_row_kl(kind, s, same, temperature), m_w, valid[v]))
        cross.append(_masked_mean(_row_kl(kind, s, other, temperature), m_s, valid[v]))
    return within[0] + within[1], cross[0] + cross[1]


@MODELS.register_module()
class CrossViewLoss(nn.Module):
    """CRLD's within-view and cross-view distillation of classification logits.

    Called by the cross-view term of the distiller
    (:class:`~mmkd_plugins.distillers.CrossViewTerm`) as
    ``loss((s_weak, s_strong), (teacher_weak, teacher_strong), valid=None)``
    with the arguments of :func:`cross_view_terms`.

    Not a :class:`~mmkd_plugins.losses.BaseDistillLoss`, on purpose: it
    compares views, not FPN levels. Its inputs are (M, K) logit rows whose
    count differs between the student's two views (an RoI head samples its
    own proposals per view), the teacher gives logits at each student view's
    rows from both of its own views, and it returns two terms that are logged
    apart. ``valid`` is not ``weights``: it leaves rows out of the means
    altogether (locations warped outside the other view), so a mean divides
    by the valid rows only.

    Args:
        kind (str): ``'sigmoid'`` for dense heads, ``'softmax'`` for RoI
            heads. The distiller checks it against the head.
        within_weight (float): lambda_wv. Paper default 2.0.
        cross_weight (float): lambda_cv. Paper default 0.5.
        temperature (float): KL temperature (paper: 4 on CIFAR, 1 on
            ImageNet). Default 1.0; see ``docs/cross_view.md``.
        tau_weak (float): Weak-view confidence threshold in [0, 1]. 0.9.
        tau_strong (float): Strong-view confidence threshold in [0, 1]. 0.2.
    """

    def __init__(self, kind: str = 'sigmoid', within_weight: float = 2.0,
                 cross_weight: float = 0.5, temperature: float = 1.0,
                 tau_weak: float = 0.9, tau_strong: float = 0.2) -> None:
        super().__init__()
        self.kind = check_choice('kind', kind, KINDS)
        self.within_weight = check_number('within_weight', within_weight)
        self.cross_weight = check_number('cross_weight', cross_weight)
        self.temperature = check_number('temperature', temperature, inclusive=False)
        self.tau_weak = check_number('tau_weak', tau_weak, max_value=1)
        self.tau_strong = check_number('tau_strong', tau_strong, max_value=1)

    def forward(self, student, teacher, valid=None) -> Dict[str, Tensor]:
        """See :func:`cross_view_terms`.

        Returns:
            dict: ``{'within': Tensor, 'cross': Tensor}``, weighted scalars.
        """
        if len(student) != 2 or len(teacher) != 2:
            raise ValueError('CrossViewLoss takes (weak, strong) pairs for the student '
                             f'and the teacher, got {len(student)} and {len(teacher)} items')
        for v, (s, t_w, t_s) in enumerate(zip(student, *teacher)):
            if s.dim() != 2 or s.shape != t_w.shape or s.shape != t_s.shape:
                raise ValueError(
                    f'view {v}: student logits {tuple(s.shape)} vs teacher '
                    f'{tuple(t_w.shape)} / {tuple(t_s.shape)}; expected equal (M, K)')
        within, cross = cross_view_terms(
            tuple(student), tuple(teacher[0]), tuple(teacher[1]), self.kind,
            self.temperature, self.tau_weak, self.tau_strong, valid)
        return dict(within=self.within_weight * within, cross=self.cross_weight * cross)


def dense_rows(logits: Tensor, num_classes: int) -> Tensor:
    """(N, A*C, H, W) head logits -> (N*H*W*A, C) rows, one per anchor."""
    n, ac, h, w = logits.shape
    if ac % num_classes:
        raise ValueError(f'head output has {ac} channels, not a multiple of '
                         f'num_classes={num_classes}')
    return logits.reshape(n, ac // num_classes, num_classes, h, w) \
        .permute(0, 3, 4, 1, 2).reshape(-1, num_classes)
