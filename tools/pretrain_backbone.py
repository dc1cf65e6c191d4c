#!/usr/bin/env python
"""Pretrain a detector config's backbone on glyph crops (the benchmark's
ImageNet step) and save it where the config's ``init_cfg`` expects it.

    python tools/pretrain_backbone.py configs/benchmark/retinanet_r18-w16_glyphs.py \
        [--out work_dirs/pretrain/glyphs_resnet18-w16.pth] [--steps 1500] [--force]

Without ``--out`` the path is the config's ``model.backbone.init_cfg.checkpoint``.
A checkpoint made with the same backbone, settings and data generator is
kept (the script says so and exits); ``--force`` trains it again.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))


def main(argv=None):
    from mmkd_plugins.benchmark import pretrain
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config', help='a detector config (its model.backbone is pretrained)')
    p.add_argument('--out', help="checkpoint path (default: the backbone's init_cfg.checkpoint)")
    for name, value in pretrain.DEFAULTS.items():
        p.add_argument('--' + name.replace('_', '-'), type=type(value), default=value,
                       help=f'default {value}')
    p.add_argument('--force', action='store_true', help='train even if a matching checkpoint exists')
    args = p.parse_args(argv)
    if not osp.isfile(args.config):
        p.error(f'config {args.config} does not exist')
    from mmengine.config import Config
    backbone = Config.fromfile(args.config).model.get('backbone')
    if backbone is None:
        p.error(f'{args.config} has no model.backbone (is it a distiller config? '
                'pretrain its student or teacher config instead)')
    out = args.out or (backbone.get('init_cfg') or {}).get('checkpoint')
    if not out:
        p.error(f'{args.config}: model.backbone.init_cfg.checkpoint is not set; pass --out')
    settings = {name: getattr(args, name) for name in pretrain.DEFAULTS}
    pretrain.pretrained_backbone(backbone.to_dict(), out, force=args.force, **settings)
    return 0


if __name__ == '__main__':
    sys.exit(main())
