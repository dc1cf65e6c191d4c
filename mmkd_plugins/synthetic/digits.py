"""The demo dataset: real handwritten digits on 128x128 canvases (COCO format).

The glyphs are scikit-learn's bundled handwritten digits (``load_digits``:
1797 real 8x8 grayscale scans, values 0..16, labels 0-9); the 'photo'
backgrounds are crops of scikit-learn's two bundled photos. Both ship inside
the scikit-learn wheel, so nothing is downloaded. ``make demo`` and the
quick tests use it; the accuracy benchmark uses the harder glyph data
(:mod:`mmkd_plugins.synthetic.glyphs`).

Layout written by :func:`generate_digits_detection` (``out_dir`` below)::

    out_dir/settings.json          generation settings ("complete": true once done)
    out_dir/annotations/<split>.json
    out_dir/<split>/000000.png ... RGB, image_size x image_size

COCO json: ``images`` entries carry ``id, file_name, width, height, style,
group`` (``file_name`` is relative to ``out_dir/<split>/``); ``annotations``
carry ``id, image_id, category_id (1..10 -> '0'..'9'), bbox [x, y, w, h],
area (= w * h), iscrowd (0)`` and ``source_index`` (the row of sklearn's
digits the glyph came from). Boxes use the pixel-edge convention: the
glyph's visible pixels are exactly the columns ``x .. x + w - 1`` and rows
``y .. y + h - 1`` of the box.

Digit pools: the 1797 digits are split, per class, into disjoint pools, one
per split (``pool_seed`` and ``pool_fractions``; by default fractions follow
the split sizes), so a validation split only has writers' digits the
training split never saw.

Styles (the background of an image, stored as ``style`` and ``group``) are
those of :func:`mmkd_plugins.synthetic.common.background`. Digit colour: of
16 random colours, the one farthest from the mean background under the
digit's box.
"""
import math

import numpy as np
from PIL import Image

from . import common
from .common import STYLES, read_image_groups, read_settings  # noqa: F401

__all__ = [
    'CLASSES', 'STYLES', 'GENERATOR_VERSION', 'dataset_meta',
    'generate_digits_detection', 'resolve_settings', 'read_settings', 'read_image_groups',
]

GENERATOR_VERSION = 2  # 2: the 'shifted' variant is gone; images are unchanged
CLASSES = tuple(str(i) for i in range(10))
# matplotlib's tab10, one colour per class.
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40),
           (148, 103, 189), (140, 86, 75), (227, 119, 194), (127, 127, 127),
           (188, 189, 34), (23, 190, 207)]

_MAX_TRIES = 12           # placements tried per digit before it is skipped
_MAX_IOU = 0.1            # max IoU between two boxes of one image
_PHOTOS = ('china.jpg', 'flower.jpg')


def dataset_meta():
    """Metainfo for mmdet datasets: ``metainfo=dataset_meta()``."""
    return dict(classes=CLASSES, palette=list(PALETTE))


def resolve_settings(splits=(('train', 800), ('val', 200)), image_size=128,
                     digits_per_image=(1, 4), scale_range=(16, 48),
                     styles=STYLES, style_probs=None, seed=0,
                     pool_seed=None, pool_fractions=None, group_map=None):
    """Validate the generator's arguments and return them normalised.

    The result is plain json (lists, dicts, numbers), so two argument sets
    that generate the same data compare equal, also after a json round trip.
    Raises ``ValueError`` with a readable message on bad values.
    """
    seed = common.check_seed(seed)
    pool_seed = common.check_seed(seed if pool_seed is None else pool_seed, 'pool_seed')
    norm_splits = common.check_splits(splits)
    split_names = [s for s, _ in norm_splits]
    image_size = common.check_image_size(image_size)
    digits_per_image = common.check_pair(digits_per_image, 'digits_per_image', 0)
    if digits_per_image[1] < 1:
        raise ValueError('digits_per_image high end must be >= 1')
    scale_range = common.check_pair(scale_range, 'scale_range', 4, image_size)
    styles = common.check_styles(styles)
    probs = common.check_style_probs(style_probs, styles, split_names)
    groups = common.check_group_map(group_map, styles)

    if pool_fractions is None:
        total = sum(c for _, c in norm_splits)
        fractions = {s: c / total for s, c in norm_splits}
    else:
        if not isinstance(pool_fractions, dict):
            raise ValueError('pool_fractions must be a dict {split: fraction}')
        fractions = {}
        for k, v in pool_fractions.items():
            if not isinstance(k, str) or not isinstance(v, (int, float)) or \
                    not math.isfinite(v) or v < 0:
                raise ValueError(f'bad pool_fractions entry {k!r}: {v!r}')
            fractions[k] = float(v)
        missing = [s for s in split_names if fractions.get(s, 0) <= 0]
        if missing:
            raise ValueError(f'pool_fractions gives no digits to split(s) {missing}')
        if sum(fractions.values()) > 1 + 1e-9:
            raise ValueError(f'pool_fractions sum to {sum(fractions.values()):g} > 1')
    return dict(
        splits=norm_splits, image_size=image_size,
        digits_per_image=digits_per_image, scale_range=list(scale_range),
        styles=styles, style_probs=probs, groups=groups, seed=seed, pool_seed=pool_seed,
        pool_fractions={k: fractions[k] for k in sorted(fractions)})


def _make_pools(pool_seed, fractions):
    """Disjoint, class-stratified pools of sklearn digit indices per name."""
    _, labels = common.sklearn_digits()
    names = sorted(fractions)
    cum = np.cumsum([fractions[n] for n in names])
    pools = {n: [] for n in names}
    for c in range(10):
        idx = np.flatnonzero(labels == c)
        idx = common.rng(pool_seed, 0, c).permutation(idx)
        n = len(idx)
        start = 0
        for name, f, cf in zip(names, [fractions[n_] for n_ in names], cum):
            end = min(n, int(round(n * cf)))
            if f > 0:
                end = max(end, start + 1)
            if end > n:
                raise ValueError(f'too many splits to give each a digit of class {c}')
            pools[name].extend(idx[start:end].tolist())
            start = end
    return {n: np.sort(np.asarray(p, dtype=np.int64)) for n, p in pools.items()}


def _glyph_alpha(glyph8, w, h):
    """Soft alpha of an 8x8 glyph (1 px zero border) scaled to ``w x h``."""
    g = np.zeros((10, 10), np.float32)
    g[1:9, 1:9] = glyph8
    v = np.asarray(Image.fromarray(g).resize((w, h), Image.BILINEAR), dtype=np.float32)
    a = np.clip((v - 3.0) / 5.0, 0.0, 1.0)
    a[v < 4.0] = 0.0  # visible pixels have alpha >= 0.2
    return a


def _render_image(g, style, cfg, pool):
    size = cfg['image_size']
    glyphs, labels = common.sklearn_digits()
    canvas = common.background(style, g, size, _PHOTOS)
    lo_n, hi_n = cfg['digits_per_image']
    lo_s, hi_s = cfg['scale_range']
    n = int(g.integers(lo_n, hi_n + 1))
    boxes, anns = [], []
    for _ in range(n):
        src = int(pool[g.integers(len(pool))])
        s = int(g.integers(lo_s, hi_s + 1))
        w = s
        h = int(np.clip(round(s * g.uniform(0.85, 1.15)), 4, size))
        alpha = _glyph_alpha(glyphs[src], w, h)
        tb = common.tight(alpha)
        if tb is None:
            continue
        placed = None
        for _try in range(_MAX_TRIES):
            px = int(g.integers(0, size - w + 1))
            py = int(g.integers(0, size - h + 1))
            box = (px + tb[0], py + tb[1], px + tb[2], py + tb[3])
            if all(common.iou(box, b) < _MAX_IOU for b in boxes):
                placed = (px, py, box)
                break
        if placed is None:
            continue
        px, py, box = placed
        region = canvas[box[1]:box[3] + 1, box[0]:box[2] + 1]
        mean = region.reshape(-1, 3).mean(axis=0).astype(np.float64)
        colour = common.contrast_colour(g, mean)
        patch = canvas[py:py + h, px:px + w]
        a = alpha[..., None]
        patch[...] = patch * (1 - a) + colour.astype(np.float32) * a
        boxes.append(box)
        anns.append(dict(bbox=box, label=int(labels[src]), source_index=src))
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8), anns


def generate_digits_detection(out_dir, splits=(('train', 800), ('val', 200)), image_size=128,
                              digits_per_image=(1, 4), scale_range=(16, 48),
                              styles=STYLES, style_probs=None, seed=0,
                              pool_seed=None, pool_fractions=None, group_map=None):
    """Generate the digits detection dataset into ``out_dir``.

    Args:
        out_dir: output folder (created). Files of the same names are replaced;
            nothing else is deleted (``tools/make_demo_data.py`` guards
            against overwriting a different dataset).
        splits: ``(name, image count)`` pairs (or a dict).
        image_size: side of the square RGB images.
        digits_per_image: ``(min, max)`` digits tried per image (uniform);
            a digit that finds no place with box IoU < 0.1 after 12 tries is
            skipped, so crowded images may hold fewer.
        scale_range: ``(min, max)`` side in pixels of the padded square a
            glyph is scaled into (its tight box is ~75-90 % of that).
        styles: background styles to use, a subset of :data:`STYLES`.
        style_probs: ``None`` (uniform), per-style probabilities (a dict
            ``{style: p}``, missing styles 0, or a sequence aligned with
            ``styles``) for all splits, or ``{split: such probabilities}``
            (splits not named are uniform). Must sum to 1. Each split gets
            exactly ``round(count * p)`` images of a style (largest
            remainder), in a seeded random order.
        seed: seeds everything except the digit pools.
        pool_seed: seeds the digit pools (default ``seed``).
        pool_fractions: ``{name: fraction of each class's digits}``; default
            proportional to the split counts. Names need not be splits: e.g.
            ``splits=(('train', 3000),), pool_fractions=dict(train=0.8,
            val=0.2)`` draws only from the training pool of a normal
            ``train 800 / val 200`` dataset with the same pool seed.
        group_map: optional ``{style: group}``; ``group`` defaults to the
            image's style.

    Returns:
        dict: ``{split: path of its COCO json}``.
    """
    cfg = resolve_settings(splits, image_size, digits_per_image, scale_range, styles,
                           style_probs, seed, pool_seed, pool_fractions, group_map)
    pools = _make_pools(cfg['pool_seed'], cfg['pool_fractions'])
    return common.generate_splits(
        out_dir, 'mmkd_plugins.synthetic.digits',
        dict(generator_version=GENERATOR_VERSION, settings=cfg), cfg, CLASSES,
        lambda g, style, split, i: _render_image(g, style, cfg, pools[split]),
        'mmkd_plugins demo digits', 'digit',
        split_info={s: dict(pool_size=int(len(p))) for s, p in pools.items()})
