"""MixDistribution: KD^3's perturbed images of a mixed distribution, and the
contrastive term that makes the student's representation ignore the shift.

KD^3 (Tang et al., ICCV 2023, https://arxiv.org/abs/2307.11469; official code
``tangjialiang97/KD3``) mixes the first- and second-order statistics of the
input pixels across the batch, MixStyle-like, with probability ``p = 1``:

1. per image and channel, ``mu`` and ``sigma`` over H and W
   (:func:`channel_stats`; the variance is the unbiased one, ``sigma =
   sqrt(var + eps)``, both detached);
2. ``lambda ~ Beta(alpha, alpha)`` per image (``alpha = 0.1``: most draws lie
   near 0 or 1) and a random permutation ``pi`` of the batch;
3. ``x' = (x - mu) / sigma * (lambda sigma + (1 - lambda) sigma_pi) +
   (lambda mu + (1 - lambda) mu_pi)`` (:func:`mix_style`).

The student embeds ``x`` and ``x'`` and a SimCLR-style (NT-Xent) loss at
temperature 0.3 pulls the two embeddings of each image together and pushes
the other images' apart (:func:`contrastive_loss`), weight 0.001. The
official code adds the same loss on the teacher's embeddings; with the
teacher frozen that term trains only its own projection, not the student,
so it is left out here.

For a detector: :class:`MixDistribution` is a registered batch augment with
MMDetection's ``batch_augments`` signature (usable in a data preprocessor
as it stands), and :class:`MixDistributionTerm` is the distillation term: it
mixes the step's (preprocessed) images, runs the student's backbone and neck
on them, pools every level of the named module globally, concatenates, and
embeds with a linear layer and L2 normalisation (KD^3's ``Embed``, 128-d).
The teacher does not run on the mixed images.
"""
from typing import Dict, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmdet.registry import MODELS
from ..checks import check_number, check_positive_int
from .detectors import STAGES, run_stages
from .parts import DistillTerm, Probe, Step
from .recorder import OutputRecorder, resolve_module


def channel_stats(x: Tensor, eps: float = 1e-6) -> Tuple[Tensor, Tensor]:
    """Per image and channel mean and standard deviation over H and W.

    Args:
        x (Tensor): (N, C, H, W).
        eps (float): Added to the (unbiased) variance before the root.

    Returns:
        tuple[Tensor, Tensor]: ``mu`` and ``sigma``, each (N, C, 1, 1), detached.
    """
    mu = x.mean(dim=(2, 3), keepdim=True)
    var = x.var(dim=(2, 3), keepdim=True)
    return mu.detach(), (var + eps).sqrt().detach()


def mix_style(x: Tensor, lam: Tensor, perm: Tensor, eps: float = 1e-6) -> Tensor:
    """Each image normalised by its own statistics and re-styled with the
    ``lam``-mix of its statistics and image ``perm[i]``'s.

    Args:
        x (Tensor): (N, C, H, W).
        lam (Tensor): (N,) mixing weights in [0, 1].
        perm (Tensor): (N,) a permutation of the batch.
        eps (float): See :func:`channel_stats`.

    Returns:
        Tensor: (N, C, H, W).
    """
    mu, sig = channel_stats(x, eps)
    lam = lam.to(x).view(-1, 1, 1, 1)
    mu_mix = lam * mu + (1 - lam) * mu[perm]
    sig_mix = lam * sig + (1 - lam) * sig[perm]
    return (x - mu) / sig * sig_mix + mu_mix


def contrastive_loss(a: Tensor, b: Tensor, temperature: float = 0.3) -> Tensor:
    """NT-Xent between two embeddings of the same N images.

    Over the 2N rows ``[a; b]`` (L2-normalised), row ``i``'s positive is the
    other embedding of its image and its negatives are the other 2N - 2
    rows: ``mean_i -log(exp(s_i+ / t) / sum_{j != i} exp(s_ij / t))``.

    Args:
        a (Tensor): (N, D).
        b (Tensor): (N, D).
        temperature (float): t > 0.

    Returns:
        Tensor: Scalar (0 for N = 1: the positive is the only other row).
    """
    z = F.normalize(torch.cat([a, b]), dim=1)
    n = a.shape[0]
    sim = z @ z.t() / temperature
    self_mask = torch.eye(2 * n, dtype=torch.bool, device=z.device)
    sim = sim.masked_fill(self_mask, float('-inf'))
    positive = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return (torch.logsumexp(sim, dim=1) - sim[torch.arange(2 * n), positive]).mean()


@MODELS.register_module()
class MixDistribution(nn.Module):
    """KD^3's MixStyle on input pixels, as an MMDetection batch augment.

    Args:
        p (float): Probability of mixing a batch. Default 1.0 (KD^3).
        alpha (float): ``Beta(alpha, alpha)`` of the mixing weights. Default 0.1.
        eps (float): See :func:`channel_stats`. Default 1e-6.
    """

    def __init__(self, p: float = 1.0, alpha: float = 0.1, eps: float = 1e-6):
        super().__init__()
        self.p = check_number('p', p, max_value=1.0)
        self.alpha = check_number('alpha', alpha, inclusive=False)
        self.eps = check_number('eps', eps, inclusive=False)

    def forward(self, inputs: Tensor, data_samples: Optional[list] = None):
        """``(mixed inputs, data_samples)``; ``inputs`` (N, C, H, W) as they
        are with probability ``1 - p`` (pixels move in value only, so boxes
        are unchanged)."""
        if self.p < 1 and torch.rand(()) >= self.p:
            return inputs, data_samples
        n = inputs.shape[0]
        lam = torch.distributions.Beta(self.alpha, self.alpha).sample((n, ))
        perm = torch.randperm(n)
        return mix_style(inputs, lam, perm.to(inputs.device), self.eps), data_samples


class ContrastiveEmbedding(nn.Module):
    """KD^3's ``Embed`` (linear, L2 norm) and the NT-Xent loss between the
    pooled features of two views.

    Args:
        in_channels (int): Width of the pooled features.
        embed_channels (int): Embedding width. Default 128.
        temperature (float): NT-Xent temperature. Default 0.3.
        loss_weight (float): Multiplier. Default 1e-3.
    """

    def __init__(self, in_channels: int, embed_channels: int = 128, temperature: float = 0.3,
                 loss_weight: float = 1e-3):
        super().__init__()
        self.embed = nn.Linear(in_channels, embed_channels)
        self.temperature = temperature
        self.loss_weight = loss_weight

    def forward(self, x: Tensor, mixed: Tensor) -> Tensor:
        return self.loss_weight * contrastive_loss(self.embed(x), self.embed(mixed),
                                                   self.temperature)


def pooled(levels: Sequence[Tensor]) -> Tensor:
    """Every level averaged over H and W, concatenated: (N, sum of widths)."""
    return torch.cat([t.float().mean(dim=(2, 3)) for t in levels], dim=1)


@MODELS.register_module()
class MixDistributionTerm(DistillTerm):
    """KD^3's MixDistribution term (module docstring): ``loss_weight *
    NT-Xent(embed(pool(f(x))), embed(pool(f(MixDistribution(x)))))``.

    Args:
        module (str): The student module whose levels are embedded, in its
            backbone or neck. Default ``'neck'`` (with KD^3's head alignment
            the projected features the teacher's head reads).
        mix (dict): The :class:`MixDistribution` config. Default p=1, alpha=0.1.
        embed_channels (int): Embedding width. Default 128.
        temperature (float): Default 0.3.
        loss_weight (float): Default 1e-3.
        name (str): The term's name and loss key. Default ``'loss_mixdist'``.
        student (nn.Module): The student detector (given by the distiller).
        teacher (nn.Module): Unused: the teacher does not see mixed images.
    """

    def __init__(self, module: str = 'neck', mix: Optional[dict] = None,
                 embed_channels: int = 128, temperature: float = 0.3,
                 loss_weight: float = 1e-3, name: str = 'loss_mixdist',
                 student: nn.Module = None, teacher: nn.Module = None):
        key = f'terms.{name}'
        if not isinstance(name, str) or not name.startswith('loss'):
            raise ValueError(f'{key}: name must start with "loss" (mmengine sums those '
                             f'entries), got {name!r}')
        resolve_module(student, module, 'student', f'{key}.module')
        if STAGES.get(module.split('.')[0], 2) > 1:
            raise ValueError(f'{key}.module={module!r}: the mixed images run through the '
                             "student's backbone and neck only; name a module there")
        self.name, self.keys, self.module = name, (name, ), module
        self.student_modules = {module}
        self.mix = MODELS.build(dict(type='MixDistribution', **(mix or {})))
        self.embed_channels = check_positive_int(f'{key}.embed_channels', embed_channels)
        self.temperature = check_number(f'{key}.temperature', temperature, inclusive=False)
        self.loss_weight = check_number(f'{key}.loss_weight', loss_weight)
        self._student = student
        self._recorder = OutputRecorder(student, [module])

    def build(self, probe: Probe) -> None:
        width = sum(s[1] for s in probe.shapes('student', self.module))
        self.loss = ContrastiveEmbedding(width, self.embed_channels, self.temperature,
                                         self.loss_weight)

    def __call__(self, step: Step) -> Dict[str, Tensor]:
        mixed_inputs, _ = self.mix(step.batch.inputs)
        with self._recorder.record():
            run_stages(self._student, mixed_inputs, STAGES[self.module.split('.')[0]])
        try:
            mixed = self._recorder.get(self.module)
        finally:
            self._recorder.clear()
        return {self.name: self.loss(pooled(step.student.get(self.module)), pooled(mixed))}
