"""Where UET's weights go: inside the ground-truth boxes or on the background.

    python tools/uet_regions.py CONFIG --teacher-ckpt TEACHER.pth \\
        [--loss loss_fgd] [--batches 4] [--seed 0]

For a UET config (a ``distill_losses`` entry with ``mc_dropout``), runs the
teacher's MC passes on training batches and prints, per distilled level, the
mean of three maps inside the ground-truth boxes and on the background:

* ``w``: UET's location weight (``mode='weight'``, the config's ``strength``,
  mean 1 per image);
* ``w rel``: the same with ``uncertainty='relative'`` (U over the teacher
  activation's RMS);
* ``U``: the uncertainty (RMS MC standard deviation);
* ``|F|``: the teacher feature's magnitude (mean over channels).

A weight below 1 inside the boxes means UET copies the objects less than the
background: what FGD's foreground term is for. See docs/uet.md.
"""
import argparse
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


def level_stats(samples: Sequence[Tensor], teacher: Sequence[Tensor], data_samples,
                input_hw, strength: float) -> List[Dict[str, Dict[str, float]]]:
    """Per level: ``{'w': {fg, bg}, 'w rel': ..., 'U': ..., '|F|': ...}``.

    Args:
        samples: Per level, the MC samples (T, N, C, h, w) (h, w may be
            smaller than the level's with ``scale < 1``).
        teacher: Per level, the teacher feature (N, C, H, W).
        data_samples: The batch's ``DetDataSample`` list (``gt_instances``).
        input_hw: The batch input's (height, width).
        strength (float): UET's ``strength``.
    """
    from mmkd_plugins.losses.uet_loss import (fit_to, mc_uncertainty, relative_uncertainty,
                                              uncertainty_weights)
    out = []
    for s, f in zip(samples, teacher):
        u = fit_to(mc_uncertainty(s, 'spatial'), f)
        masks = torch.stack([box_mask(d.gt_instances.bboxes.cpu(), input_hw, f.shape[-2:])
                             for d in data_samples])
        maps = {'w': uncertainty_weights(u, strength),
                'w rel': uncertainty_weights(relative_uncertainty(u, f), strength), 'U': u,
                '|F|': f.abs().mean(1, keepdim=True)}
        out.append({k: inside_outside(v.float().cpu(), masks) for k, v in maps.items()})
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('config', help='a UET distillation config')
    parser.add_argument('--teacher-ckpt', required=True, help='the trained teacher')
    parser.add_argument('--loss', default='loss_fgd', help='the distill_losses entry')
    parser.add_argument('--batches', type=int, default=4)
    parser.add_argument('--seed', type=int, default=0)
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
        batches = iter(runner.build_dataloader(cfg.train_dataloader))
        sums = None
        with torch.no_grad():
            for _ in range(args.batches):
                data = model.data_preprocessor(next(batches), True)
                x, data_samples = data['inputs'], data['data_samples']
                teacher = term.select(model.teacher.extract_feat(x))
                samples = model.teacher_samples(x, args.loss)
                stats = level_stats(samples, teacher, data_samples, x.shape[-2:], strength)
                sums = stats if sums is None else [
                    {k: {r: a[k][r] + b[k][r] for r in a[k]} for k in a}
                    for a, b in zip(sums, stats)]
    mc = entry.mc_dropout
    print(f'{args.config}\nteacher {args.teacher_ckpt}; {args.batches} training batches; '
          f'p={mc.get("p")}, T={mc.get("passes")}, scale={mc.get("scale", 1.0)}, '
          f'strength={strength}\n')
    print('| level | w inside boxes | w background | w rel inside | w rel background '
          '| U inside | U background | abs(F) inside | abs(F) background |')
    print('|---|---|---|---|---|---|---|---|---|')
    for i, level in enumerate(sums):
        m = {k: {r: v / args.batches for r, v in level[k].items()} for k in level}
        print(f"| {i} | {m['w']['fg']:.2f} | {m['w']['bg']:.2f} | {m['w rel']['fg']:.2f} | "
              f"{m['w rel']['bg']:.2f} | {m['U']['fg']:.3f} | "
              f"{m['U']['bg']:.3f} | {m['|F|']['fg']:.3f} | {m['|F|']['bg']:.3f} |")


if __name__ == '__main__':
    main()
