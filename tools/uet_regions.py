"""Where UET's uncertainty falls: inside the ground-truth boxes or on the
background; optionally a picture of it.

    python tools/uet_regions.py CONFIG --teacher-ckpt TEACHER.pth \\
        [--loss loss_fgd] [--batches 4] [--split train] [--seed 0] \\
        [--figure maps.png --images 4]

For a UET config (a ``distill_losses`` entry with ``mc_dropout``), runs the
teacher's MC passes on batches of the split and prints, per distilled level,
the mean of four maps inside the ground-truth boxes and on the background:

* ``U``: the uncertainty (RMS MC standard deviation over channels), what
  ``mode='add'`` adds to the teacher feature (times ``strength``);
* ``|F|``: the teacher feature's magnitude (mean over channels);
* ``U/|F|``: their ratio, the relative size of the added residual;
* ``w``: the weight ``mode='weight'`` would give (the config's ``strength``,
  mean 1 per image). A weight below 1 inside the boxes means weight mode
  copies the objects less than the background.

With ``--figure``, also writes a picture of the first batch's first
``--images`` images: each with its boxes, beside the heat map of U on every
distilled level (min-max scaled per image and level). See docs/uet.md.
"""
import argparse
import math
import os.path as osp
import sys
from typing import Dict, List, Sequence

import torch
from torch import Tensor

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def box_mask(bboxes: Tensor, input_hw: Sequence[int], feat_hw: Sequence[int]) -> Tensor:
    """(H, W) bool map of FGD's foreground cells of the boxes on a level
    (:func:`~mmkd_plugins.losses.fgd_masks`), so that "inside the boxes" is
    the region FGD's foreground term weighs.

    Args:
        bboxes (Tensor): (K, 4) boxes ``x1, y1, x2, y2`` in input pixels.
        input_hw (tuple): The network input's (height, width).
        feat_hw (tuple): The level's (H, W).
    """
    from mmkd_plugins.losses import fgd_masks
    return fgd_masks([bboxes], input_hw, feat_hw)[0][0, 0] > 0


def inside_outside(values: Tensor, masks: Tensor) -> Dict[str, float]:
    """Means of ``values`` (N, 1, H, W) over ``masks`` (N, H, W) and over its
    complement; NaN for an empty region."""
    v = values[:, 0]
    nan = float('nan')
    return dict(fg=v[masks].mean().item() if masks.any() else nan,
                bg=v[~masks].mean().item() if (~masks).any() else nan)


def level_maps(var: Sequence[Tensor], teacher: Sequence[Tensor], strength: float
               ) -> List[Dict[str, Tensor]]:
    """Per level, the (N, 1, H, W) maps ``U``, ``|F|``, ``U/|F|`` and ``w``.

    Args:
        var: Per level, the MC variance (N, C, h, w) (h, w may be smaller
            than the level's with ``scale < 1``).
        teacher: Per level, the teacher feature (N, C, H, W).
        strength (float): UET's ``strength`` (for ``w``).
    """
    from mmkd_plugins.losses.uet_loss import fit_to, mc_uncertainty, uncertainty_weights
    out = []
    for v, f in zip(var, teacher):
        u = fit_to(mc_uncertainty(v, 'spatial'), f)
        mag = f.float().abs().mean(1, keepdim=True)
        out.append({'U': u, '|F|': mag, 'U/|F|': u / mag.clamp_min(1e-6),
                    'w': uncertainty_weights(u, strength)})
    return out


def level_stats(var: Sequence[Tensor], teacher: Sequence[Tensor], data_samples, input_hw,
                strength: float) -> List[Dict[str, Dict[str, float]]]:
    """Per level: ``{'U': {fg, bg}, '|F|': ..., 'U/|F|': ..., 'w': ...}``,
    the means inside FGD's box cells (``fg``) and outside (``bg``).

    Args:
        var, teacher, strength: See :func:`level_maps`.
        data_samples: The batch's ``DetDataSample`` list (``gt_instances``).
        input_hw: The batch input's (height, width).
    """
    out = []
    for maps, f in zip(level_maps(var, teacher, strength), teacher):
        masks = torch.stack([box_mask(d.gt_instances.bboxes.cpu(), input_hw, f.shape[-2:])
                             for d in data_samples])
        out.append({k: inside_outside(v.float().cpu(), masks) for k, v in maps.items()})
    return out


def draw_figure(path: str, images: Sequence[Tensor], data_samples, var: Sequence[Tensor],
                teacher: Sequence[Tensor], input_hw: Sequence[int], title: str) -> None:
    """Rows of: the image with its boxes, then U on each level.

    Args:
        path (str): The PNG to write.
        images (Sequence[Tensor]): The loader's images (3, H, W), uint8 BGR.
        data_samples: Their ``DetDataSample`` (``gt_instances.bboxes``).
        var, teacher: See :func:`level_maps`, for these images.
        input_hw (tuple): The batch input's (height, width), padding included.
        title (str): The figure's title.
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle
    maps = level_maps(var, teacher, 1.0)
    rows, cols = len(images), 1 + len(maps)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.2 * rows), squeeze=False)
    for i, (img, sample) in enumerate(zip(images, data_samples)):
        h, w = img.shape[-2:]
        ax = axes[i][0]
        ax.imshow(img.cpu().numpy().transpose(1, 2, 0)[..., ::-1])
        for x1, y1, x2, y2 in sample.gt_instances.bboxes.cpu().tolist():
            ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, color='lime', lw=1))
        for level, m in enumerate(maps):
            u = m['U'][i, 0].cpu()
            # Only the cells over the image, not over the batch's padding.
            rows_, cols_ = (math.ceil(n * size / full) for n, size, full in
                            zip(u.shape, (h, w), input_hw))
            u = u[:rows_, :cols_]
            ax = axes[i][1 + level]
            ax.imshow(u.numpy(), cmap='magma', extent=(0, w, h, 0))
            ax.set_title(f'U, level {level} (max {u.max():.2f})' if i == 0 else
                         f'max {u.max():.2f}', fontsize=7)
        axes[i][0].set_title('image and boxes' if i == 0 else '', fontsize=7)
        for ax in axes[i]:
            ax.set_xticks([])
            ax.set_yticks([])
        axes[i][0].set_xlim(0, w)
        axes[i][0].set_ylim(h, 0)
    fig.suptitle(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='a UET distillation config')
    parser.add_argument('--teacher-ckpt', required=True, help='the trained teacher')
    parser.add_argument('--loss', default='loss_fgd', help='the distill_losses entry')
    parser.add_argument('--batches', type=int, default=4)
    parser.add_argument('--split', choices=('train', 'val'), default='train')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--figure', help='write a picture of U on the first batch here')
    parser.add_argument('--images', type=int, default=4, help='images in the picture')
    args = parser.parse_args(argv)

    import mmkd_plugins  # noqa: F401
    from mmdet.utils import register_all_modules
    from mmengine.config import Config

    from mmkd_plugins.experiment import scratch_runner
    register_all_modules()
    cfg = Config.fromfile(args.config)
    entry = cfg.model.get('distill_losses', {}).get(args.loss)
    if entry is None or not entry.get('mc_dropout'):
        parser.error(f'{args.config}: model.distill_losses.{args.loss} has no mc_dropout')
    if not osp.isfile(args.teacher_ckpt):
        parser.error(f'--teacher-ckpt {args.teacher_ckpt}: no such file')
    strength = float(entry.loss.get('strength', 1.0))
    cfg.model.teacher_ckpt = args.teacher_ckpt
    torch.manual_seed(args.seed)
    with scratch_runner(cfg, 'uet_regions') as runner:
        model = runner.model.eval()
        # With mc_dropout the distilled teacher module is the neck.
        term = next(t for t in model.terms if t.name == args.loss)
        mc = term.sampler.cfg
        batches = iter(runner.build_dataloader(cfg[f'{args.split}_dataloader']))
        sums = None
        with torch.no_grad():
            for b in range(args.batches):
                raw = next(batches)
                data = model.data_preprocessor(raw, True)
                x, data_samples = data['inputs'], data['data_samples']
                teacher = term.select(model.teacher.extract_feat(x))
                var = model.teacher_var(x, args.loss)
                stats = level_stats(var, teacher, data_samples, x.shape[-2:], strength)
                sums = stats if sums is None else [
                    {k: {r: a[k][r] + b_[k][r] for r in a[k]} for k in a}
                    for a, b_ in zip(sums, stats)]
                if b == 0 and args.figure:
                    n = args.images
                    draw_figure(args.figure, raw['inputs'][:n], data_samples[:n],
                                [v[:n] for v in var], [t[:n] for t in teacher], x.shape[-2:],
                                f'{osp.basename(args.config)}: placement={mc["placement"]}, '
                                f'p={mc["p"]}, T={mc["passes"]}, scale={mc["scale"]}')
    print(f'{args.config}\nteacher {args.teacher_ckpt}; {args.batches} {args.split} batches; '
          f'placement={mc["placement"]}, p={mc["p"]}, T={mc["passes"]}, '
          f'scale={mc["scale"]}, strength={strength}\n')
    print('| level | U inside boxes | U background | abs(F) inside | abs(F) background '
          '| U/abs(F) inside | U/abs(F) background | w inside | w background |')
    print('|---|---|---|---|---|---|---|---|---|')
    for i, level in enumerate(sums):
        m = {k: {r: v / args.batches for r, v in level[k].items()} for k in level}
        print(f"| {i} | {m['U']['fg']:.3f} | {m['U']['bg']:.3f} | {m['|F|']['fg']:.3f} | "
              f"{m['|F|']['bg']:.3f} | {m['U/|F|']['fg']:.3f} | {m['U/|F|']['bg']:.3f} | "
              f"{m['w']['fg']:.2f} | {m['w']['bg']:.2f} |")


if __name__ == '__main__':
    main()
