"""What the teacher "dreams": a grid of the data-free generator's images at
several points of training.

At ``points`` iterations spread over the run (the first before any update),
the hook makes ``num_images`` images from the same latents
(:meth:`~mmkd_plugins.distillers.DataFree.sample`: the generator's BN
statistics are left as they were, so training is unaffected), draws the
teacher's pseudo-boxes on them, and writes the row to
``<work_dir>/<out_dir>/iter_<N>.png``. After each row it composes every row
found there into ``grid.png``, top to bottom by iteration, so a resumed run
keeps the rows of the first.
"""
import glob
import os
import os.path as osp
import re
from typing import List

import numpy as np
from mmengine.hooks import Hook

from mmdet.registry import HOOKS
from ..checks import check_number, check_positive_int
from .utils import get_distiller

_ROW = re.compile(r'iter_(\d+)\.png$')


def grid_iterations(max_iters: int, points: int) -> List[int]:
    """``points`` iterations from 0 to ``max_iters``, evenly spread, unique."""
    if points == 1:
        return [max_iters]
    return sorted({round(k * max_iters / (points - 1)) for k in range(points)})


def image_row(images: np.ndarray, boxes: List[np.ndarray], gap: int = 2) -> np.ndarray:
    """Images side by side, each with its boxes outlined in red.

    Args:
        images (np.ndarray): (N, H, W, 3) uint8 RGB.
        boxes (list[np.ndarray]): Per image (K, 4) xyxy pixel boxes.
        gap (int): White pixels between images.

    Returns:
        np.ndarray: (H, N*W + (N-1)*gap, 3) uint8.
    """
    n, h, w, _ = images.shape
    row = np.full((h, n * w + (n - 1) * gap, 3), 255, np.uint8)
    for i, (image, image_boxes) in enumerate(zip(images, boxes)):
        image = image.copy()
        for x0, y0, x1, y1 in np.round(image_boxes).astype(int):
            x0, x1 = np.clip([x0, x1], 0, w - 1)
            y0, y1 = np.clip([y0, y1], 0, h - 1)
            image[y0:y1 + 1, [x0, x1]] = (255, 0, 0)
            image[[y0, y1], x0:x1 + 1] = (255, 0, 0)
        row[:, i * (w + gap):i * (w + gap) + w] = image
    return row


@HOOKS.register_module()
class GeneratedImagesHook(Hook):
    """Save rows of generated images during data-free distillation (module
    docstring).

    Args:
        points (int): Rows over the run, the first at iteration 0. Default 5.
        num_images (int): Images per row. Default 8.
        seed (int): Seed of the latents, the same for every row. Default 0.
        out_dir (str): Folder under the work dir. Default ``'generated'``.
        draw_boxes (bool): Outline the teacher's pseudo-boxes (the
            distiller's ``pseudo_score_thr``). Default True.
    """
    priority = 'LOW'

    def __init__(self, points: int = 5, num_images: int = 8, seed: int = 0,
                 out_dir: str = 'generated', draw_boxes: bool = True):
        self.points = check_positive_int('points', points)
        self.num_images = check_positive_int('num_images', num_images)
        self.seed = int(check_number('seed', seed))
        self.out_dir, self.draw_boxes = out_dir, bool(draw_boxes)

    def before_train(self, runner) -> None:
        model = get_distiller(runner, type(self).__name__)
        if not hasattr(model.objective, 'sample'):
            raise TypeError('GeneratedImagesHook needs a data-free distiller '
                            '(model.type="DataFreeDistiller")')
        self.iters = set(grid_iterations(runner.max_iters, self.points))
        if runner.iter == 0 and 0 in self.iters:
            self.save(runner, 0)

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if runner.iter + 1 in self.iters:
            self.save(runner, runner.iter + 1)

    def save(self, runner, iteration: int) -> str:
        """Write the row of ``iteration`` and the grid; returns the grid's path."""
        from PIL import Image
        model = get_distiller(runner, type(self).__name__)
        images, detections = model.objective.sample(model, self.num_images, self.seed)
        pixels = (images.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()
        boxes = [d.bboxes.cpu().numpy() if self.draw_boxes else np.zeros((0, 4))
                 for d in detections]
        folder = osp.join(runner.work_dir, self.out_dir)
        os.makedirs(folder, exist_ok=True)
        row = Image.fromarray(image_row(pixels, boxes))
        row.save(osp.join(folder, f'iter_{iteration:06d}.png'))
        return self.write_grid(folder)

    @staticmethod
    def write_grid(folder: str) -> str:
        """Stack every ``iter_<N>.png`` of ``folder`` by N, each row labelled
        with its iteration, into ``folder/grid.png``."""
        from PIL import Image, ImageDraw
        rows = sorted((int(_ROW.search(p).group(1)), p)
                      for p in glob.glob(osp.join(folder, 'iter_*.png')) if _ROW.search(p))
        images = [Image.open(p).convert('RGB') for _, p in rows]
        label, gap = 64, 2
        width = label + max(im.width for im in images)
        grid = Image.new('RGB', (width, sum(im.height + gap for im in images) - gap), 'white')
        draw, y = ImageDraw.Draw(grid), 0
        for (iteration, _), image in zip(rows, images):
            grid.paste(image, (label, y))
            draw.text((4, y + image.height // 2 - 5), f'iter {iteration}', fill=(0, 0, 0))
            y += image.height + gap
        path = osp.join(folder, 'grid.png')
        grid.save(path)
        return path
