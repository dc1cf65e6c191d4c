#!/usr/bin/env python
"""Generate a synthetic detection dataset (COCO json + PNGs).

    # the demo digits (make demo, quick tests)
    python tools/make_demo_data.py --out data/digits --train 800 --val 200 \
        --size 128 --seed 0 \
        [--style-probs photo=0.05,plain=0.35,gradient=0.3,texture=0.3] \
        [--style-probs val:plain=0.25,gradient=0.25,texture=0.25,photo=0.25]
    # the benchmark's glyph scenes (make accuracy)
    python tools/make_demo_data.py --dataset glyphs --out data/glyphs
    # an unlabelled "web" pool of the same glyphs, rendered otherwise (KD^3)
    python tools/make_demo_data.py --dataset glyphs-web --out data/glyphs_web \
        [--pool 3000] [--irrelevant 0.25]

``--style-probs`` applies to every split, or to one split with a ``split:``
prefix (repeat the option for several). The settings are stored in
``OUT/settings.json``: if OUT already holds a dataset generated with the same
settings, the script says so and exits at once; if it holds anything else it
refuses unless ``--overwrite`` is given (which then removes only the previous
generator's own files). See ``mmkd_plugins/synthetic/digits.py`` and
``glyphs.py`` (and ``glyphs_web.py``) for what is generated.
"""
import argparse
import json
import os
import os.path as osp
import re
import sys
import time

# name -> (module, generate function, defaults of the options that differ)
DATASETS = {
    'digits': ('digits', 'generate_digits_detection',
               dict(out='data/digits', train=800, val=200, objects_per_image=(1, 4),
                    scale_range=(16, 48))),
    'glyphs': ('glyphs', 'generate_glyphs_detection',
               dict(out='data/glyphs', train=3000, val=1000, objects_per_image=(2, 6),
                    scale_range=(12, 64))),
    'glyphs-web': ('glyphs_web', 'generate_glyphs_web',
                   dict(out='data/glyphs_web', objects_per_image=(1, 5),
                        scale_range=(10, 64))),
}


SETTINGS_FILE = 'settings.json'  # mmkd_plugins.synthetic.common.SETTINGS_FILE


def _load_generator(dataset):
    import importlib
    return importlib.import_module(f'mmkd_plugins.synthetic.{DATASETS[dataset][0]}')


def _non_negative_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected an integer, got {text!r}') from None
    if v < 0:
        raise argparse.ArgumentTypeError(f'must be >= 0, got {v}')
    return v


def _positive_int(text):
    v = _non_negative_int(text)
    if v == 0:
        raise argparse.ArgumentTypeError('must be > 0')
    return v


def _parse_probs(text):
    """``[split:]style=p,style=p`` -> (split or None, {style: p})."""
    split = None
    m = re.match(r'^\s*([A-Za-z0-9_.-]+)\s*:(.*)$', text)
    if m:
        split, text = m.group(1), m.group(2)
    probs = {}
    for part in text.split(','):
        part = part.strip()
        if not part:
            continue
        if '=' not in part:
            raise ValueError(f'bad --style-probs item {part!r}: expected style=probability')
        name, value = (s.strip() for s in part.split('=', 1))
        if name in probs:
            raise ValueError(f'style {name!r} given twice in --style-probs')
        try:
            probs[name] = float(value)
        except ValueError:
            raise ValueError(f'bad probability {value!r} for style {name!r}') from None
    if not probs:
        raise ValueError(f'empty --style-probs {text!r}')
    return split, probs


def build_parser():
    p = argparse.ArgumentParser(
        description='Generate a deterministic synthetic detection dataset (COCO format): '
                    'the demo digits or the benchmark glyphs.')
    p.add_argument('--dataset', choices=sorted(DATASETS), default='digits',
                   help='digits: handwritten digits, the demo data (default); glyphs: '
                        'the accuracy benchmark\'s 20-class glyph scenes; glyphs-web: an '
                        'unlabelled pool of them in other styles, with irrelevant images')
    p.add_argument('--out', default=None,
                   help='output folder (default: data/digits or data/glyphs)')
    p.add_argument('--train', type=_non_negative_int, default=None,
                   help='training images (0: no train split; default 800 digits, 3000 glyphs)')
    p.add_argument('--val', type=_non_negative_int, default=None,
                   help='validation images (0: no val split; default 200 digits, 1000 glyphs)')
    p.add_argument('--test', type=_non_negative_int, default=0,
                   help='test images (default 0: no test split)')
    p.add_argument('--size', type=_positive_int, default=128, help='image side (default 128)')
    p.add_argument('--seed', type=_non_negative_int, default=0, help='random seed (default 0)')
    p.add_argument('--pool-seed', type=_non_negative_int, default=None,
                   help='seed of the train/val digit pools (default: --seed)')
    p.add_argument('--objects-per-image', '--digits-per-image', type=_non_negative_int,
                   nargs=2, default=None, metavar=('MIN', 'MAX'),
                   help='objects per image (default 1 4 digits, 2 6 glyphs)')
    p.add_argument('--scale-range', type=_positive_int, nargs=2, default=None,
                   metavar=('MIN', 'MAX'),
                   help='object size in pixels: digits, the side of the square a digit is '
                        'scaled into (default 16 48); glyphs, the glyph height (default 12 64)')
    p.add_argument('--styles', default=None,
                   help='comma-separated background styles (default: all of '
                        'plain,gradient,texture,photo)')
    p.add_argument('--style-probs', action='append', default=[], metavar='[SPLIT:]S=P,...',
                   help='style probabilities, e.g. photo=0.05,plain=0.35,gradient=0.3,'
                        'texture=0.3; prefix with "train:" etc. for one split; repeatable')
    p.add_argument('--pool', type=_positive_int, default=3000,
                   help='glyphs-web: pool images (default 3000)')
    p.add_argument('--irrelevant', type=float, default=0.25,
                   help='glyphs-web: fraction of images without any class glyph (default 0.25)')
    p.add_argument('--overwrite', action='store_true',
                   help='replace an existing dataset generated with other settings')
    p.add_argument('--quiet', action='store_true', help='print less')
    return p


def _remove_previous(out, prev, gen):
    """Delete only the files a previous generation wrote (per its settings)."""
    name_re = re.compile(r'^\d{6}\.png$')
    splits = [s for s, _ in (prev.get('settings') or {}).get('splits', [])]
    for split in splits:
        d = osp.join(out, split)
        if osp.isdir(d):
            for f in os.listdir(d):
                if name_re.match(f):
                    os.remove(osp.join(d, f))
            if not os.listdir(d):
                os.rmdir(d)
        for suffix in ('', '_truth'):  # a web pool's truth file too
            ann = osp.join(out, 'annotations', f'{split}{suffix}.json')
            if osp.isfile(ann):
                os.remove(ann)
    ann_dir = osp.join(out, 'annotations')
    if osp.isdir(ann_dir) and not os.listdir(ann_dir):
        os.rmdir(ann_dir)
    settings = osp.join(out, SETTINGS_FILE)
    if osp.isfile(settings):
        os.remove(settings)


def _web_kwargs(parser, args):
    """Generator arguments, split names and image count of a web pool."""
    for name in ('train', 'val', 'test', 'styles', 'pool_seed', 'style_probs'):
        if getattr(args, name) not in (None, 0, []):
            parser.error(f'--{name.replace("_", "-")} does not apply to --dataset glyphs-web '
                         '(use --pool and --irrelevant)')
    kwargs = dict(images=args.pool, image_size=args.size, irrelevant_fraction=args.irrelevant,
                  objects_per_image=tuple(args.objects_per_image),
                  height_range=tuple(args.scale_range), seed=args.seed)
    return kwargs, ['web'], args.pool


def _split_kwargs(parser, args, gen):
    """Generator arguments, split names and image count of a split dataset."""
    splits = [(name, n) for name, n in (('train', args.train), ('val', args.val),
                                        ('test', args.test)) if n > 0]
    if not splits:
        parser.error('nothing to generate: --train, --val and --test are all 0')
    styles = gen.STYLES
    if args.styles is not None:
        styles = tuple(s.strip() for s in args.styles.split(',') if s.strip())
    split_names = [s for s, _ in splits]
    style_probs = None
    try:
        if args.style_probs:
            common, per = None, {}
            for text in args.style_probs:
                split, probs = _parse_probs(text)
                if split is None:
                    if common is not None:
                        raise ValueError('--style-probs without a split prefix given twice')
                    common = probs
                else:
                    if split not in split_names:
                        raise ValueError(f'--style-probs names split {split!r}, which is not '
                                         f'generated (splits: {", ".join(split_names)})')
                    if split in per:
                        raise ValueError(f'--style-probs for split {split!r} given twice')
                    per[split] = probs
            style_probs = {s: per.get(s, common) for s in split_names} if per else common
        kwargs = dict(splits=splits, image_size=args.size, styles=styles,
                      style_probs=style_probs, seed=args.seed)
        if args.dataset == 'digits':
            kwargs.update(digits_per_image=tuple(args.objects_per_image),
                          scale_range=tuple(args.scale_range), pool_seed=args.pool_seed)
        else:
            if args.pool_seed is not None:
                raise ValueError('--pool-seed applies to --dataset digits only')
            kwargs.update(objects_per_image=tuple(args.objects_per_image),
                          height_range=tuple(args.scale_range))
    except ValueError as e:
        parser.error(str(e))
    return kwargs, split_names, sum(n for _, n in splits)



def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    for name, value in DATASETS[args.dataset][2].items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    gen = _load_generator(args.dataset)

    if args.dataset == 'glyphs-web':
        kwargs, split_names, total = _web_kwargs(parser, args)
    else:
        kwargs, split_names, total = _split_kwargs(parser, args, gen)
    try:
        settings = gen.resolve_settings(**kwargs)
    except ValueError as e:
        parser.error(str(e))

    out = args.out
    prev = None
    if osp.exists(out) and not osp.isdir(out):
        parser.exit(1, f'error: --out {out} exists and is not a folder\n')
    try:
        prev = gen.read_settings(out) if osp.isdir(out) else None
    except (OSError, ValueError) as e:
        if not args.overwrite:
            parser.exit(1, f'error: cannot read {osp.join(out, SETTINGS_FILE)} ({e}); '
                           'pass --overwrite to regenerate\n')
    # compare after a json round trip, as stored
    settings = json.loads(json.dumps(settings))
    same = prev is not None and prev.get('settings') == settings and \
        prev.get('generator_version') == gen.GENERATOR_VERSION and \
        prev.get('generator') == gen.__name__
    if same and prev.get('complete') and all(
            osp.isfile(osp.join(out, 'annotations', f'{s}.json')) for s in split_names):
        print(f'{out} already holds the {args.dataset} dataset with identical settings; '
              'nothing to do.')
        return 0
    if prev is not None and not same:
        if not args.overwrite:
            diff = sorted(k for k in set(settings) | set(prev.get('settings') or {})
                          if (prev.get('settings') or {}).get(k) != settings.get(k))
            if prev.get('generator_version') != gen.GENERATOR_VERSION:
                diff.append('generator_version')
            parser.exit(1, f'error: {out} holds a dataset generated with different '
                           f'settings (differs in: {", ".join(diff)}); refusing to overwrite '
                           'it. Pass --overwrite to replace it, or choose another --out.\n')
        if not args.quiet:
            print(f'--overwrite: removing the previous dataset in {out}')
        _remove_previous(out, prev, gen)
    elif prev is None and osp.isdir(out) and os.listdir(out) and not args.overwrite:
        parser.exit(1, f'error: {out} is not empty and holds no {SETTINGS_FILE}; refusing '
                       'to write into it. Pass --overwrite to write the dataset there anyway '
                       '(other files are kept), or choose another --out.\n')

    t0 = time.perf_counter()
    paths = getattr(gen, DATASETS[args.dataset][1])(out, **kwargs)
    dt = time.perf_counter() - t0
    if not args.quiet:
        print(f'wrote {total} images in {dt:.1f}s to {out}:')
        for split, path in paths.items():
            print(f'  {split}: {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
