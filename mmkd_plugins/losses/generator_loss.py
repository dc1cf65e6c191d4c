"""The generator's loss terms of data-free distillation (TA-DFKD), as pure
functions: DeepInversion's BN-statistics distance, the official total
variation, and the adversarial Jensen-Shannon term on dense heads' sigmoid
class maps (and GFL's box distributions). The hooks that collect the BN
term from the teacher, and the weights, are in
:mod:`mmkd_plugins.distillers.data_free`.
"""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


def bn_statistics_distance(x: Tensor, running_mean: Tensor, running_var: Tensor) -> Tensor:
    """DeepInversion's term for one BN layer: ``||var_BN - var(x)||_2 +
    ||mu_BN - mean(x)||_2`` (norms, not squared, as the official code).

    Args:
        x (Tensor): The layer's input (N, C, H, W); statistics per channel
            over N, H, W, the variance biased (as BN normalises).
        running_mean (Tensor): (C,).
        running_var (Tensor): (C,).

    Returns:
        Tensor: Scalar.
    """
    mean = x.mean(dim=(0, 2, 3))
    var = x.var(dim=(0, 2, 3), unbiased=False)
    return torch.norm(running_var - var, 2) + torch.norm(running_mean - mean, 2)


def total_variation(images: Tensor) -> Tensor:
    """The official code's TV: the L2 norms (not squared) of the horizontal,
    vertical and both diagonal pixel differences, summed.

    Args:
        images (Tensor): (N, C, H, W).

    Returns:
        Tensor: Scalar.
    """
    diffs = (images[..., :, :-1] - images[..., :, 1:],
             images[..., :-1, :] - images[..., 1:, :],
             images[..., 1:, :-1] - images[..., :-1, 1:],
             images[..., :-1, :-1] - images[..., 1:, 1:])
    return sum(torch.norm(d) for d in diffs)


def _kl_terms(m: Tensor, p: Tensor) -> Tensor:
    return m * (m.log() - p.log())


def binary_js(student: Tensor, teacher: Tensor, temperature: float = 3.0,
              clamp: float = 0.01) -> Tensor:
    """Per-element Jensen-Shannon divergence of two sigmoid maps, each
    element a Bernoulli distribution.

    As the official code: ``p = sigmoid(z / T)``, ``m = (p_s + p_t) / 2``,
    all three clamped to ``[clamp, 1 - clamp]``, and ``JS = (KL(m || p_s) +
    KL(m || p_t)) / 2``. The official code passes ``log p`` and ``m`` to
    ``KLDivLoss``, which makes the mixture the first argument of each KL (the
    textbook JS has it second); both are 0 exactly when ``p_s = p_t``.

    Args:
        student (Tensor): Logits, any shape.
        teacher (Tensor): Logits, same shape.
        temperature (float): T. Default 3 (the official code's).
        clamp (float): Probability floor. Default 0.01.

    Returns:
        Tensor: Same shape, >= 0.
    """
    ps, pt = torch.sigmoid(student / temperature), torch.sigmoid(teacher / temperature)
    lo, hi = clamp, 1 - clamp
    m = ((ps + pt) / 2).clamp(lo, hi)
    ps, pt = ps.clamp(lo, hi), pt.clamp(lo, hi)
    return 0.5 * (_kl_terms(m, ps) + _kl_terms(1 - m, 1 - ps)
                  + _kl_terms(m, pt) + _kl_terms(1 - m, 1 - pt))


def softmax_js(student: Tensor, teacher: Tensor, dim: int, temperature: float = 3.0,
               clamp: float = 0.01) -> Tensor:
    """:func:`binary_js` for softmax distributions along ``dim`` (GFL's
    box-side distributions); summed over ``dim``.

    Args:
        student (Tensor): Logits.
        teacher (Tensor): Logits, same shape.
        dim (int): The distribution's dimension.
        temperature (float): T. Default 3.
        clamp (float): Probability floor. Default 0.01.

    Returns:
        Tensor: The shape without ``dim``.
    """
    ps, pt = F.softmax(student / temperature, dim), F.softmax(teacher / temperature, dim)
    lo, hi = clamp, 1 - clamp
    m = ((ps + pt) / 2).clamp(lo, hi)
    ps, pt = ps.clamp(lo, hi), pt.clamp(lo, hi)
    return (0.5 * (_kl_terms(m, ps) + _kl_terms(m, pt))).sum(dim)


def adversarial_loss(student_outs: Sequence, teacher_outs: Sequence,
                     reg_max: Optional[int] = None, temperature: float = 3.0,
                     clamp: float = 0.01) -> Tensor:
    """TA-DFKD's ``L_adv = 1 - clamp(JS, 0, 1)`` for dense heads: the mean of
    :func:`binary_js` over every location and class of the class maps (the
    first output of the head), plus, for GFL (``reg_max`` given), the same
    on the mean :func:`softmax_js` of the box-side distributions.

    Args:
        student_outs (Sequence): The student's dense head outputs; element 0
            is the class maps, one (N, A*C, H, W) logit map per level, and
            for GFL element 1 the box maps (N, 4*(reg_max+1), H, W).
        teacher_outs (Sequence): The teacher's, same shapes.
        reg_max (int, optional): GFL's ``reg_max``.
        temperature (float): T. Default 3.
        clamp (float): Probability floor. Default 0.01.

    Returns:
        Tensor: Scalar; minimising it maximises the disagreement.
    """
    js = torch.cat([binary_js(s, t, temperature, clamp).flatten()
                    for s, t in zip(student_outs[0], teacher_outs[0])])
    loss = 1 - js.mean().clamp(0, 1)
    if reg_max is not None:
        def sides(x):
            return x.reshape(x.shape[0], -1, reg_max + 1, *x.shape[-2:])

        box = torch.cat([softmax_js(sides(s), sides(t), 2, temperature, clamp).flatten()
                         for s, t in zip(student_outs[1], teacher_outs[1])])
        loss = loss + 1 - box.mean().clamp(0, 1)
    return loss
