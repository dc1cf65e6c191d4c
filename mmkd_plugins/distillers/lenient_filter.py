"""TA-DFKD's lenient filter for detectors: the teacher as a lenient expert
that keeps the generated images it decides cleanly.

:func:`self_ce_scores` scores each image by the teacher's cross-entropy
against its own decisions on its dense class maps; :func:`lenient_keep`
splits the scores with a two-component Gaussian mixture, as the official
code; :class:`LenientFilter` is the two with their settings
(``docs/data_free.md`` says why the score is a dense one).
"""
import warnings
from typing import Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..checks import check_number, check_positive_int

#: What a lenient filter config may hold (arguments of LenientFilter).
FILTER_KEYS = ('topk', 'threshold', 'max_iter', 'tol', 'reg_covar')


def self_ce_scores(cls_maps: Sequence[Tensor], topk: int = 100) -> Tensor:
    """Each image's loss of the teacher against its own decisions.

    The classification analogue is the cross-entropy against the teacher's
    own argmax. A dense head decides every (location, anchor, class) entry
    of its sigmoid class maps on its own: positive when ``p > 0.5``. The
    cross-entropy of ``p`` against that decision is ``-log max(p, 1 - p) =
    softplus(-|z|)`` for the logit ``z``; an image's score is its mean over
    the ``topk`` entries with the highest ``p`` (all levels together), where
    the objects are, since the many clear background entries would drown
    them. Low: the teacher is decided (objects or none); high: it hesitates.

    Args:
        cls_maps (Sequence[Tensor]): Logits, one (N, A*C, H, W) map per level.
        topk (int): Entries per image. Default 100.

    Returns:
        Tensor: (N,), in [0, log 2].
    """
    logits = torch.cat([m.flatten(1) for m in cls_maps], dim=1)
    top = logits.topk(min(topk, logits.shape[1]), dim=1).values
    return F.softplus(-top.abs()).mean(dim=1)


def lenient_keep(scores, threshold: float = 0.5, max_iter: int = 10, tol: float = 1e-2,
                 reg_covar: float = 5e-4, random_state: int = 0) -> np.ndarray:
    """TA-DFKD's selection: min-max normalise the per-image losses, fit a
    two-component 1-D Gaussian mixture (scikit-learn, the official settings),
    keep an image when its posterior of the low-mean component exceeds
    ``threshold``.

    The fit starts from a fixed ``random_state`` (the official code leaves
    it random), so a step's selection depends on its losses alone. Fewer
    than two images, or all losses equal, keep everything; the image with
    the lowest loss is always kept (on a handful of images a fit can leave
    every posterior under the threshold).

    Args:
        scores: (N,) losses (Tensor or array).
        threshold (float): Posterior needed. Default 0.5.
        max_iter (int): EM iterations. Default 10.
        tol (float): EM tolerance. Default 1e-2.
        reg_covar (float): Added to the variances. Default 5e-4.
        random_state (int): Seed of the mixture's initialisation. Default 0.

    Returns:
        np.ndarray: (N,) bool.
    """
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture
    s = (scores.detach().cpu().double().numpy() if isinstance(scores, Tensor)
         else np.asarray(scores, dtype=np.float64)).reshape(-1)
    if s.size < 2 or not s.max() > s.min():
        return np.ones(s.size, dtype=bool)
    x = ((s - s.min()) / (s.max() - s.min())).reshape(-1, 1)
    gmm = GaussianMixture(n_components=2, max_iter=max_iter, tol=tol, reg_covar=reg_covar,
                          random_state=random_state)
    with warnings.catch_warnings():
        # max_iter=10 often stops before convergence, as in the official code.
        warnings.simplefilter('ignore', ConvergenceWarning)
        gmm.fit(x)
    keep = gmm.predict_proba(x)[:, gmm.means_.argmin()] > threshold
    keep[s.argmin()] = True
    return keep


class LenientFilter:
    """The teacher as a lenient expert: :func:`self_ce_scores` per image,
    then :func:`lenient_keep`.

    Args:
        topk (int): See :func:`self_ce_scores`. Default 100.
        threshold, max_iter, tol, reg_covar: See :func:`lenient_keep`.
    """

    def __init__(self, topk: int = 100, threshold: float = 0.5, max_iter: int = 10,
                 tol: float = 1e-2, reg_covar: float = 5e-4):
        key = 'data_free.lenient_filter'
        self.topk = check_positive_int(f'{key}.topk', topk)
        self.threshold = check_number(f'{key}.threshold', threshold, max_value=1)
        self.max_iter = check_positive_int(f'{key}.max_iter', max_iter)
        self.tol = check_number(f'{key}.tol', tol, inclusive=False)
        self.reg_covar = check_number(f'{key}.reg_covar', reg_covar)

    def __call__(self, cls_maps: Sequence[Tensor]) -> Tensor:
        """(N,) bool on the maps' device: the images to keep."""
        keep = lenient_keep(self_ce_scores(cls_maps, self.topk), self.threshold,
                            self.max_iter, self.tol, self.reg_covar)
        return torch.from_numpy(keep).to(cls_maps[0].device)


def build_filter(cfg: Optional[dict]) -> Optional[LenientFilter]:
    """A :class:`LenientFilter` from its config dict; ``None``: no filter."""
    if cfg is None:
        return None
    if not isinstance(cfg, dict):
        raise TypeError(f'data_free.lenient_filter must be a dict or None, got {cfg!r}')
    unknown = sorted(set(cfg) - set(FILTER_KEYS))
    if unknown:
        raise ValueError(f'data_free.lenient_filter: unknown key(s) {unknown}; '
                         f'allowed: {list(FILTER_KEYS)}')
    return LenientFilter(**cfg)
