"""Heat maps of the teacher's MC-dropout uncertainty over training images.

Every ``interval`` training iterations the hook re-runs the teacher with the
MC dropout of a UET spec (see ``docs/uet.md``) on the current batch and
writes, per image, the uncertainty of one neck level blended over the image
through ``runner.visualizer.add_image``: image files with a
``LocalVisBackend``, image summaries with TensorBoard's backend.
"""
from typing import Optional

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.hooks import Hook

from mmdet.registry import HOOKS
from ..checks import check_number, check_positive_int
from ..losses.uet_loss import mc_uncertainty, minmax_per_image
from .utils import get_distiller


@HOOKS.register_module()
class UncertaintyVisHook(Hook):
    """Write uncertainty heat maps of the teacher every ``interval`` iters.

    The map is the spatial uncertainty ``sqrt(mean_C var)`` of the MC
    variance (whatever the spec's ``reduce``), upsampled to the image,
    min-max scaled per image (blue: certain, red: uncertain) and blended
    over it. Images are named ``uncertainty_<loss>_level<l>_img<i>``. The
    MC passes draw their masks from their own generators (keyed as outside
    training), never from the global RNG, so training is unaffected.

    Args:
        interval (int): Every this many training iterations. Default 50.
        max_images (int): Images of the batch to draw. Default 4.
        level (int): Index into the spec's distilled levels. Default 0.
        loss_name (str, optional): The ``distill_losses`` entry; default the
            first one with ``mc_dropout``.
        alpha (float): Opacity of the heat map, in [0, 1]. Default 0.5.
    """
    priority = 'LOW'

    def __init__(self, interval: int = 50, max_images: int = 4, level: int = 0,
                 loss_name: Optional[str] = None, alpha: float = 0.5):
        self.interval = check_positive_int('interval', interval)
        self.max_images = check_positive_int('max_images', max_images)
        if isinstance(level, bool) or not isinstance(level, int) or level < 0:
            raise ValueError(f'level must be an int >= 0, got {level!r}')
        self.level = level
        self.alpha = check_number('alpha', alpha, max_value=1)
        self.loss_name = loss_name

    def _spec_name(self, model) -> str:
        names = [n for n, s in model.specs.items() if s['mc_dropout']]
        if self.loss_name is None and names:
            return names[0]
        if self.loss_name in names:
            return self.loss_name
        raise ValueError(
            f'UncertaintyVisHook needs a distill_losses entry with mc_dropout'
            f'{"" if self.loss_name is None else f" named {self.loss_name!r}"}; '
            f'the model has {names or "none"}')

    def before_train(self, runner) -> None:
        self._spec_name(get_distiller(runner, type(self).__name__))

    def after_train_iter(self, runner, batch_idx: int, data_batch=None,
                         outputs=None) -> None:
        if not self.every_n_train_iters(runner, self.interval) or data_batch is None:
            return
        model = get_distiller(runner, type(self).__name__)
        name = self._spec_name(model)
        data = model.data_preprocessor(data_batch, False)
        inputs = data['inputs']
        var = model.teacher_var(inputs, name)
        if not 0 <= self.level < len(var):
            raise ValueError(f'UncertaintyVisHook: level={self.level} but '
                             f'{name!r} distils {len(var)} levels')
        u = mc_uncertainty(var[self.level], 'spatial')  # (N, 1, h, w)
        u = F.interpolate(u, size=inputs.shape[-2:], mode='bilinear', align_corners=False)
        for i, raw in enumerate(data_batch['inputs'][:self.max_images]):
            h, w = raw.shape[-2:]
            heat = minmax_per_image(u[i:i + 1, :, :h, :w])[0, 0]
            image = self.blend(raw, heat.cpu().numpy())
            runner.visualizer.add_image(
                f'uncertainty_{name}_level{self.level}_img{i}', image, step=runner.iter + 1)

    def blend(self, raw: torch.Tensor, heat: np.ndarray) -> np.ndarray:
        """The heat map over the image.

        Args:
            raw (Tensor): The loader's image (3, H, W), uint8 BGR (as
                MMDetection's ``LoadImageFromFile`` reads it).
            heat (np.ndarray): (H, W) in [0, 1].

        Returns:
            np.ndarray: (H, W, 3) uint8 RGB.
        """
        image = raw.detach().cpu().numpy().transpose(1, 2, 0)[..., ::-1].astype(np.float32)
        colour = cv2.applyColorMap(np.uint8(np.round(heat * 255)), cv2.COLORMAP_JET)
        colour = colour[..., ::-1].astype(np.float32)  # BGR -> RGB
        out = (1 - self.alpha) * image + self.alpha * colour
        return np.ascontiguousarray(np.clip(np.round(out), 0, 255).astype(np.uint8))
