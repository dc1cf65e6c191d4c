"""A small, deterministic COCO-format detection dataset of real handwritten digits.

The glyphs are scikit-learn's bundled handwritten digits (``load_digits``:
1797 real 8x8 grayscale scans, values 0..16, labels 0-9); the 'photo'
backgrounds are crops of scikit-learn's two bundled photos
(``load_sample_images``: china.jpg and flower.jpg). Both ship inside the
scikit-learn wheel, so nothing is downloaded.

Layout written by :func:`generate_digits_detection` (``out_dir`` below)::

    out_dir/settings.json          generation settings ("complete": true once done)
    out_dir/annotations/<split>.json
    out_dir/<split>/000000.png ... RGB, image_size x image_size

COCO json: ``images`` entries carry ``id, file_name, width, height, style,
group`` (``file_name`` is relative to ``out_dir/<split>/``); ``annotations``
carry ``id, image_id, category_id (1..10 -> '0'..'9'), bbox [x, y, w, h],
area (= w * h), iscrowd (0), source_index`` (the row of sklearn's digits the
glyph came from) and ``render`` (how the glyph was drawn). Boxes use the
pixel-edge convention: the glyph's visible pixels are exactly the columns
``x .. x + w - 1`` and rows ``y .. y + h - 1`` of the box (tight; the padded
square the glyph was scaled into is not the box).

Determinism: every random draw comes from numpy ``SeedSequence`` streams
keyed by ``(seed, split, image index)``, files are written without
timestamps, so the same arguments give byte-identical json and PNGs with the
same numpy / Pillow / scikit-learn versions on the same kind of CPU.

Digit pools: the 1797 digits are split, per class, into disjoint pools, one per
split (``pool_seed`` and ``pool_fractions``; by default fractions follow the
split sizes), so a validation split only has writers' digits the training
split never saw.

Styles (the background of an image, stored as ``style`` and ``group``):

* ``plain``: one flat random colour.
* ``gradient``: a linear gradient between two random colours at a random angle.
* ``texture``: a procedural pattern between two nearby colours: stripes
  (sine or square wave), a rotated checkerboard, or smooth value noise.
* ``photo``: a random square crop (160 px .. full height) of china.jpg or
  flower.jpg, randomly flipped, rescaled to ``image_size`` (bilinear).

Digit colour: for each digit, 16 random colours are drawn and the one
farthest (RGB distance) from the mean background under the digit's box is
used (pure black or white if even that is closer than 120).

``shifted=True`` makes a distribution-shifted "webly collected" variant of the
same digits (same pools for the same ``pool_seed`` and fractions); its style
names are the normal ones prefixed with ``shifted_``. What changes:

* digits are drawn outlined (a 1-2 px contour, 40 %), inverted (a glyph-shaped
  hole in a filled plate, whose box is the annotation, 30 %) or solid (30 %),
  and their contrast colour is jittered (Gaussian, sd 25 per channel);
* the scale range is shrunk to ``(0.625 * lo, 0.833 * hi)`` (e.g. 16..48 ->
  10..40) and the glyph aspect ratio varies more (0.7..1.4 instead of 0.85..1.15);
* ``shifted_photo`` uses close-up crops (40..128 px, so upscaled and blurry)
  of flower.jpg only; ``shifted_texture`` uses finer, higher-contrast patterns;
* every image then gets strong colour jitter (per-channel gain 0.6..1.4 and
  offset +-40, random channel order), a Gaussian blur (radius 0.4..1.2, half
  the images), Gaussian pixel noise (sd 3..12) and a JPEG round trip
  (quality 15..45, 70 % of the images) before being saved as PNG. Boxes are
  the glyph's support before these steps.
"""
import io
import json
import math
import os
import os.path as osp
import zlib
from functools import lru_cache

import numpy as np
from PIL import Image, ImageFilter

__all__ = [
    'CLASSES', 'STYLES', 'SHIFTED_PREFIX', 'GENERATOR_VERSION',
    'dataset_meta', 'generate_digits_detection', 'resolve_settings',
    'read_settings', 'read_image_groups',
]

GENERATOR_VERSION = 1
CLASSES = tuple(str(i) for i in range(10))
STYLES = ('plain', 'gradient', 'texture', 'photo')
SHIFTED_PREFIX = 'shifted_'
# matplotlib's tab10, one colour per class.
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40),
           (148, 103, 189), (140, 86, 75), (227, 119, 194), (127, 127, 127),
           (188, 189, 34), (23, 190, 207)]
SETTINGS_FILE = 'settings.json'
IMAGE_NAME = '{:06d}.png'

_MAX_TRIES = 12           # placements tried per digit before it is skipped
_MAX_IOU = 0.1            # max IoU between two boxes of one image
_MIN_CONTRAST = 120.0     # RGB distance wanted between digit and background


def dataset_meta():
    """Metainfo for mmdet datasets: ``metainfo=dataset_meta()``."""
    return dict(classes=CLASSES, palette=list(PALETTE))


# --------------------------------------------------------------------------
# sources
# --------------------------------------------------------------------------
def _sklearn_datasets():
    try:
        from sklearn import datasets
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            'demo_digits needs scikit-learn (it bundles the digits and the '
            'sample photos, nothing is downloaded): pip install -c '
            'requirements/constraints.txt scikit-learn') from e
    return datasets


@lru_cache(maxsize=1)
def _digits():
    d = _sklearn_datasets().load_digits()
    images = np.ascontiguousarray(d.images, dtype=np.float32)  # (1797, 8, 8)
    labels = np.asarray(d.target, dtype=np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


@lru_cache(maxsize=1)
def _photos():
    d = _sklearn_datasets().load_sample_images()
    out = {}
    for name, img in zip(d.filenames, d.images):
        out[osp.basename(name)] = Image.fromarray(np.ascontiguousarray(img, dtype=np.uint8))
    return out


# --------------------------------------------------------------------------
# settings
# --------------------------------------------------------------------------
def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _pair(value, name, lo_min, hi_max=None):
    try:
        lo, hi = value
    except (TypeError, ValueError):
        raise ValueError(f'{name} must be a pair (low, high), got {value!r}') from None
    if not (_is_int(lo) and _is_int(hi)):
        raise ValueError(f'{name} must be two integers, got {value!r}')
    lo, hi = int(lo), int(hi)
    if lo < lo_min or hi < lo:
        raise ValueError(f'{name} must satisfy {lo_min} <= low <= high, got ({lo}, {hi})')
    if hi_max is not None and hi > hi_max:
        raise ValueError(f'{name} high end {hi} exceeds {hi_max}')
    return [lo, hi]


def _probs_for(spec, styles, where):
    """One split's style probabilities as a list aligned with ``styles``."""
    if spec is None:
        return [1.0 / len(styles)] * len(styles)
    if isinstance(spec, dict):
        unknown = [k for k in spec if k not in styles]
        if unknown:
            raise ValueError(f'unknown style name(s) {unknown} in style_probs{where}; '
                             f'styles are {list(styles)}')
        vals = [spec.get(s, 0.0) for s in styles]
    else:
        vals = list(spec)
        if len(vals) != len(styles):
            raise ValueError(f'style_probs{where} has {len(vals)} values for '
                             f'{len(styles)} styles {list(styles)}')
    try:
        vals = [float(v) for v in vals]
    except (TypeError, ValueError):
        raise ValueError(f'style_probs{where} must be numbers, got {spec!r}') from None
    if any(not math.isfinite(v) or v < 0 for v in vals):
        raise ValueError(f'style_probs{where} must be finite and >= 0, got {spec!r}')
    total = sum(vals)
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f'style_probs{where} must sum to 1, they sum to {total:g}')
    return [v / total for v in vals]


def resolve_settings(splits=(('train', 800), ('val', 200)), image_size=128,
                     digits_per_image=(1, 4), scale_range=(16, 48),
                     styles=STYLES, style_probs=None, seed=0, shifted=False,
                     pool_seed=None, pool_fractions=None, group_map=None):
    """Validate the generator's arguments and return them normalised.

    The result is plain json (lists, dicts, numbers), so two argument sets
    that generate the same data compare equal, also after a json round trip.
    Raises ``ValueError`` with a readable message on bad values.
    """
    if not _is_int(seed) or seed < 0:
        raise ValueError(f'seed must be an integer >= 0, got {seed!r}')
    pool_seed = seed if pool_seed is None else pool_seed
    if not _is_int(pool_seed) or pool_seed < 0:
        raise ValueError(f'pool_seed must be an integer >= 0, got {pool_seed!r}')
    if isinstance(splits, dict):
        splits = list(splits.items())
    norm_splits = []
    for item in splits:
        try:
            name, count = item
        except (TypeError, ValueError):
            raise ValueError(f'splits must be (name, count) pairs, got {item!r}') from None
        if not isinstance(name, str) or not name or name != osp.basename(name) \
                or name in ('.', '..', 'annotations'):
            raise ValueError(f'bad split name {name!r} (a plain folder name, not "annotations")')
        if not _is_int(count) or count < 1:
            raise ValueError(f'split {name!r} needs a positive integer count, got {count!r}')
        if name in [s for s, _ in norm_splits]:
            raise ValueError(f'split {name!r} given twice')
        norm_splits.append([name, int(count)])
    if not norm_splits:
        raise ValueError('splits is empty')
    split_names = [s for s, _ in norm_splits]

    if not _is_int(image_size) or not 16 <= image_size <= 4096:
        raise ValueError(f'image_size must be an integer in 16..4096, got {image_size!r}')
    image_size = int(image_size)
    digits_per_image = _pair(digits_per_image, 'digits_per_image', 0)
    if digits_per_image[1] < 1:
        raise ValueError('digits_per_image high end must be >= 1')
    scale_range = _pair(scale_range, 'scale_range', 4, image_size)
    if shifted:
        eff_scale = [max(4, round(scale_range[0] * 0.625)),
                     max(4, round(scale_range[1] * 0.833))]
        eff_scale[1] = max(eff_scale)
    else:
        eff_scale = list(scale_range)

    if isinstance(styles, str):
        styles = [styles]
    styles = list(styles)
    if not styles:
        raise ValueError('styles is empty')
    unknown = [s for s in styles if s not in STYLES]
    if unknown:
        raise ValueError(f'unknown style name(s) {unknown}; known styles are {list(STYLES)}')
    if len(set(styles)) != len(styles):
        raise ValueError(f'styles has duplicates: {styles}')

    # style_probs: None | per-style spec | {split: per-style spec or None}
    per_split = isinstance(style_probs, dict) and bool(style_probs) and \
        any(k in split_names for k in style_probs) and \
        not any(k in STYLES for k in style_probs)
    probs = {}
    if per_split:
        unknown = [k for k in style_probs if k not in split_names]
        if unknown:
            raise ValueError(f'style_probs names split(s) {unknown} that are not in '
                             f'splits {split_names}')
        for name in split_names:
            probs[name] = _probs_for(style_probs.get(name), styles, f"['{name}']")
    else:
        if isinstance(style_probs, dict) and style_probs:
            bad = [k for k in style_probs if k not in styles]
            if bad and all(k not in STYLES for k in bad):
                raise ValueError(
                    f'unknown style or split name(s) {bad} in style_probs; styles are '
                    f'{styles}, splits are {split_names}')
        p = _probs_for(style_probs, styles, '')
        probs = {name: list(p) for name in split_names}

    if group_map is None:
        group_map = {}
    if not isinstance(group_map, dict):
        raise ValueError(f'group_map must be a dict style -> group, got {group_map!r}')
    bad = [k for k in group_map if k not in STYLES]
    if bad:
        raise ValueError(f'group_map has unknown style name(s) {bad}')
    prefix = SHIFTED_PREFIX if shifted else ''
    groups = {s: str(group_map[s]) if s in group_map else prefix + s for s in styles}

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
        effective_scale_range=eff_scale, styles=styles, style_probs=probs,
        groups=groups, seed=int(seed), shifted=bool(shifted),
        pool_seed=int(pool_seed),
        pool_fractions={k: fractions[k] for k in sorted(fractions)})


# --------------------------------------------------------------------------
# randomness
# --------------------------------------------------------------------------
def _key(name):
    return zlib.crc32(name.encode('utf-8'))


def _rng(seed, *key):
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=key))


def _make_pools(pool_seed, fractions):
    """Disjoint, class-stratified pools of sklearn digit indices per name."""
    _, labels = _digits()
    names = sorted(fractions)
    cum = np.cumsum([fractions[n] for n in names])
    pools = {n: [] for n in names}
    for c in range(10):
        idx = np.flatnonzero(labels == c)
        idx = _rng(pool_seed, 0, c).permutation(idx)
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


def _style_plan(n, probs, rng):
    """Exact quotas (largest remainder) of each style, in a seeded order."""
    raw = np.asarray(probs) * n
    counts = np.floor(raw).astype(np.int64)
    rest = n - int(counts.sum())
    order = np.argsort(-(raw - counts), kind='stable')
    counts[order[:rest]] += 1
    plan = np.repeat(np.arange(len(probs)), counts)
    return rng.permutation(plan)


# --------------------------------------------------------------------------
# backgrounds
# --------------------------------------------------------------------------
@lru_cache(maxsize=8)
def _grid(size):
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    return xx, yy


def _two_colours(rng, lo, hi):
    c0 = rng.uniform(0, 255, 3)
    d = rng.normal(size=3)
    d /= np.linalg.norm(d) + 1e-9
    c1 = np.clip(c0 + d * rng.uniform(lo, hi), 0, 255)
    return c0, c1


def _bg_plain(rng, size):
    c = rng.uniform(0, 255, 3).astype(np.float32)
    return np.broadcast_to(c, (size, size, 3)).copy()


def _bg_gradient(rng, size):
    c0, c1 = _two_colours(rng, 60, 200)
    xx, yy = _grid(size)
    th = rng.uniform(0, 2 * np.pi)
    t = xx * np.cos(th) + yy * np.sin(th)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    return (c0 + (c1 - c0) * t[..., None]).astype(np.float32)


def _value_noise(rng, size, cells):
    g = rng.uniform(0, 1, (cells, cells)).astype(np.float32)
    return np.asarray(Image.fromarray(g).resize((size, size), Image.BILINEAR), dtype=np.float32)


def _bg_texture(rng, size, shifted=False):
    lo, hi = (60, 120) if shifted else (35, 80)
    c0, c1 = _two_colours(rng, lo, hi)
    xx, yy = _grid(size)
    kind = rng.integers(3)
    th = rng.uniform(0, np.pi)
    u = xx * np.cos(th) + yy * np.sin(th)
    v = -xx * np.sin(th) + yy * np.cos(th)
    fine = 0.5 if shifted else 1.0
    if kind == 0:    # stripes
        period = rng.uniform(6, 24) * fine
        m = 0.5 + 0.5 * np.sin(2 * np.pi * u / period + rng.uniform(0, 2 * np.pi))
        if rng.random() < 0.5:
            m = (m > 0.5).astype(np.float32)
    elif kind == 1:  # rotated checkerboard
        cell = rng.uniform(4, 16) * fine
        m = ((np.floor(u / cell) + np.floor(v / cell)) % 2).astype(np.float32)
    else:            # smooth value noise plus grain
        cells = int(rng.integers(4, 13) / fine)
        m = _value_noise(rng, size, cells)
        m = np.clip(m + rng.normal(0, 0.08, m.shape), 0, 1)
    return (c0 + (c1 - c0) * m[..., None]).astype(np.float32)


def _bg_photo(rng, size, shifted=False):
    photos = _photos()
    names = ['flower.jpg'] if shifted else sorted(photos)
    img = photos[names[rng.integers(len(names))]]
    w, h = img.size
    side = int(rng.integers(40, 129)) if shifted else int(rng.integers(160, min(w, h) + 1))
    x0 = int(rng.integers(0, w - side + 1))
    y0 = int(rng.integers(0, h - side + 1))
    out = img.resize((size, size), Image.BILINEAR, box=(x0, y0, x0 + side, y0 + side))
    arr = np.asarray(out, dtype=np.float32)
    if rng.random() < 0.5:
        arr = arr[:, ::-1]
    return np.ascontiguousarray(arr)


def _background(style, rng, size, shifted):
    if style == 'plain':
        return _bg_plain(rng, size)
    if style == 'gradient':
        return _bg_gradient(rng, size)
    if style == 'texture':
        return _bg_texture(rng, size, shifted)
    return _bg_photo(rng, size, shifted)


# --------------------------------------------------------------------------
# digits
# --------------------------------------------------------------------------
def _glyph_alpha(glyph8, w, h):
    """Soft alpha of an 8x8 glyph (1 px zero border) scaled to ``w x h``."""
    g = np.zeros((10, 10), np.float32)
    g[1:9, 1:9] = glyph8
    v = np.asarray(Image.fromarray(g).resize((w, h), Image.BILINEAR), dtype=np.float32)
    a = np.clip((v - 3.0) / 5.0, 0.0, 1.0)
    a[v < 4.0] = 0.0  # visible pixels have alpha >= 0.2
    return a


def _erode(a, r):
    p = np.pad(a, r)
    out = a.copy()
    h, w = a.shape
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            np.minimum(out, p[r + dy:r + dy + h, r + dx:r + dx + w], out=out)
    return out


def _tight(a):
    rows = np.flatnonzero(a.any(axis=1))
    cols = np.flatnonzero(a.any(axis=0))
    if len(rows) == 0:
        return None
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])  # inclusive


def _iou(a, b):
    # boxes as inclusive pixel ranges (x0, y0, x1, y1)
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    area_a = (a[2] - a[0] + 1) * (a[3] - a[1] + 1)
    area_b = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return inter / (area_a + area_b - inter)


def _contrast_colour(rng, mean):
    cands = rng.uniform(0, 255, (16, 3))
    d = np.linalg.norm(cands - mean, axis=1)
    best = int(np.argmax(d))
    if d[best] < _MIN_CONTRAST:
        return np.where(mean < 127.5, 255.0, 0.0)
    return cands[best]


def _render_image(rng, style, cfg, pool):
    size = cfg['image_size']
    shifted = cfg['shifted']
    glyphs, labels = _digits()
    canvas = _background(style, rng, size, shifted)
    lo_n, hi_n = cfg['digits_per_image']
    lo_s, hi_s = cfg['effective_scale_range']
    aspect = (0.7, 1.4) if shifted else (0.85, 1.15)
    n = int(rng.integers(lo_n, hi_n + 1))
    boxes, anns = [], []
    for _ in range(n):
        src = int(pool[rng.integers(len(pool))])
        s = int(rng.integers(lo_s, hi_s + 1))
        w = s
        h = int(np.clip(round(s * rng.uniform(*aspect)), 4, size))
        alpha = _glyph_alpha(glyphs[src], w, h)
        render = 'solid'
        if shifted:
            r = rng.random()
            if r < 0.4:
                render = 'outline'
                alpha = alpha - _erode(alpha, 1 if s < 28 else 2)
                alpha[alpha < 0.2] = 0.0
            elif r < 0.7:
                render = 'inverted'
        tb = _tight(alpha)
        if tb is None:
            continue
        if render == 'inverted':
            pad = int(rng.integers(1, 4))
            ph, pw = alpha.shape
            tb = (max(0, tb[0] - pad), max(0, tb[1] - pad),
                  min(pw - 1, tb[2] + pad), min(ph - 1, tb[3] + pad))
        placed = None
        for _try in range(_MAX_TRIES):
            px = int(rng.integers(0, size - w + 1))
            py = int(rng.integers(0, size - h + 1))
            box = (px + tb[0], py + tb[1], px + tb[2], py + tb[3])
            if all(_iou(box, b) < _MAX_IOU for b in boxes):
                placed = (px, py, box)
                break
        if placed is None:
            continue
        px, py, box = placed
        region = canvas[box[1]:box[3] + 1, box[0]:box[2] + 1]
        mean = region.reshape(-1, 3).mean(axis=0).astype(np.float64)
        colour = _contrast_colour(rng, mean)
        if shifted:
            colour = np.clip(colour + rng.normal(0, 25, 3), 0, 255)
        patch = canvas[py:py + h, px:px + w]
        if render == 'inverted':
            # plate in the contrast colour, glyph cut out in the local mean
            x0, y0, x1, y1 = (box[0] - px, box[1] - py, box[2] - px, box[3] - py)
            plate = patch[y0:y1 + 1, x0:x1 + 1]
            plate[...] = colour
            a = alpha[y0:y1 + 1, x0:x1 + 1, None]
            plate[...] = plate * (1 - a) + mean.astype(np.float32) * a
        else:
            a = alpha[..., None]
            patch[...] = patch * (1 - a) + colour.astype(np.float32) * a
        boxes.append(box)
        anns.append(dict(bbox=box, label=int(labels[src]), source_index=src, render=render))
    if shifted:
        canvas = _shift_postprocess(rng, canvas)
    img = np.clip(np.rint(canvas), 0, 255).astype(np.uint8)
    return img, anns


def _shift_postprocess(rng, canvas):
    gain = rng.uniform(0.6, 1.4, 3)
    offset = rng.uniform(-40, 40, 3)
    canvas = canvas[..., rng.permutation(3)] * gain + offset
    img = Image.fromarray(np.clip(np.rint(canvas), 0, 255).astype(np.uint8))
    if rng.random() < 0.5:
        img = img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.4, 1.2))))
    arr = np.asarray(img, dtype=np.float32)
    arr = arr + rng.normal(0, rng.uniform(3, 12), arr.shape).astype(np.float32)
    if rng.random() < 0.7:
        img = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8))
        buf = io.BytesIO()
        img.save(buf, format='JPEG', quality=int(rng.integers(15, 46)))
        buf.seek(0)
        with Image.open(buf) as jpg:
            arr = np.asarray(jpg.convert('RGB'), dtype=np.float32)
    return arr


# --------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------
def _write_json(path, obj, indent=None):
    tmp = path + '.tmp'
    with open(tmp, 'w', encoding='utf-8') as f:
        json.dump(obj, f, indent=indent, separators=(',', ':') if indent is None else None)
        f.write('\n')
    os.replace(tmp, path)


def read_settings(out_dir):
    """The ``settings.json`` of a generated dataset, or ``None`` if absent."""
    path = osp.join(out_dir, SETTINGS_FILE)
    if not osp.isfile(path):
        return None
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def read_image_groups(ann_file, key='group'):
    """``{image id: value of key}`` of a generated COCO json (``group`` or ``style``)."""
    with open(ann_file, encoding='utf-8') as f:
        data = json.load(f)
    return {img['id']: img.get(key) for img in data['images']}


def generate_digits_detection(out_dir, splits=(('train', 800), ('val', 200)), image_size=128,
                              digits_per_image=(1, 4), scale_range=(16, 48),
                              styles=STYLES, style_probs=None, seed=0, shifted=False,
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
        shifted: make the distribution-shifted variant (module docstring);
            style names become ``'shifted_' + style``.
        pool_seed: seeds the digit pools (default ``seed``).
        pool_fractions: ``{name: fraction of each class's digits}``; default
            proportional to the split counts. Names need not be splits: e.g.
            ``splits=(('train', 3000),), pool_fractions=dict(train=0.8,
            val=0.2)`` draws only from the training pool of a normal
            ``train 800 / val 200`` dataset with the same pool seed.
        group_map: optional ``{style: group}``; ``group`` defaults to the
            image's style (``shifted_`` prefix included when shifted).

    Returns:
        dict: ``{split: path of its COCO json}``.
    """
    cfg = resolve_settings(splits, image_size, digits_per_image, scale_range, styles,
                           style_probs, seed, shifted, pool_seed, pool_fractions, group_map)
    size = cfg['image_size']
    prefix = SHIFTED_PREFIX if cfg['shifted'] else ''
    pools = _make_pools(cfg['pool_seed'], cfg['pool_fractions'])
    ann_dir = osp.join(out_dir, 'annotations')
    os.makedirs(ann_dir, exist_ok=True)
    settings_path = osp.join(out_dir, SETTINGS_FILE)
    header = dict(generator='mmkd_plugins.datasets.demo_digits',
                  generator_version=GENERATOR_VERSION, settings=cfg)
    _write_json(settings_path, dict(header, complete=False), indent=2)
    categories = [dict(id=i + 1, name=c, supercategory='digit') for i, c in enumerate(CLASSES)]
    result, outputs = {}, {}
    for split, count in cfg['splits']:
        img_dir = osp.join(out_dir, split)
        os.makedirs(img_dir, exist_ok=True)
        key = _key(split)
        plan = _style_plan(count, cfg['style_probs'][split],
                           _rng(cfg['seed'], 1, key, int(cfg['shifted'])))
        pool = pools[split]
        images, annotations = [], []
        for i in range(count):
            style = cfg['styles'][plan[i]]
            rng = _rng(cfg['seed'], 2, key, int(cfg['shifted']), i)
            img, anns = _render_image(rng, style, cfg, pool)
            file_name = IMAGE_NAME.format(i)
            Image.fromarray(img).save(osp.join(img_dir, file_name), format='PNG')
            images.append(dict(id=i + 1, file_name=file_name, width=size, height=size,
                               style=prefix + style, group=cfg['groups'][style]))
            for a in anns:
                x0, y0, x1, y1 = a['bbox']
                w, h = x1 - x0 + 1, y1 - y0 + 1
                annotations.append(dict(
                    id=len(annotations) + 1, image_id=i + 1, category_id=a['label'] + 1,
                    bbox=[x0, y0, w, h], area=w * h, iscrowd=0,
                    source_index=a['source_index'], render=a['render']))
        coco = dict(
            info=dict(description=f'mmkd_plugins demo digits, split {split}',
                      version=str(GENERATOR_VERSION), seed=cfg['seed'],
                      shifted=cfg['shifted']),
            images=images, annotations=annotations, categories=categories)
        ann_path = osp.join(ann_dir, f'{split}.json')
        _write_json(ann_path, coco)
        result[split] = ann_path
        outputs[split] = dict(ann_file=f'annotations/{split}.json', img_dir=f'{split}/',
                              images=len(images), annotations=len(annotations),
                              pool_size=int(len(pool)))
    _write_json(settings_path, dict(header, complete=True, outputs=outputs), indent=2)
    return result
