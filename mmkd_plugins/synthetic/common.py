"""What the synthetic dataset generators share: image sources that ship
inside registry packages, seeded randomness, backgrounds, argument checks
and the COCO writer.

Sources (nothing is downloaded):

* scikit-learn's bundled handwritten digits (``load_digits``: 1797 real 8x8
  scans) and its two sample photos (``china.jpg``, ``flower.jpg``);
* matplotlib's sample photos (``grace_hopper.jpg``,
  ``Minduka_Present_Blue_Pack.png``) and its TrueType fonts
  (``mpl-data/fonts/ttf``). matplotlib comes with mmengine.

Determinism: every draw comes from a numpy ``SeedSequence`` stream keyed by
``(seed, purpose, split, index)``, and files are written without
timestamps, so the same arguments give byte-identical output with the same
numpy / Pillow versions on the same kind of CPU.
"""
import json
import math
import os
import os.path as osp
import zlib
from functools import lru_cache

import numpy as np
from PIL import Image

STYLES = ('plain', 'gradient', 'texture', 'photo')
SETTINGS_FILE = 'settings.json'
IMAGE_NAME = '{:06d}.png'
MIN_CONTRAST = 120.0     # RGB distance wanted between an object and its background


# --------------------------------------------------------------------------
# sources
# --------------------------------------------------------------------------
def _sklearn_datasets():
    try:
        from sklearn import datasets
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            'the synthetic datasets need scikit-learn (it bundles the digits and '
            'the sample photos, nothing is downloaded): pip install -c '
            'requirements/constraints.txt scikit-learn') from e
    return datasets


@lru_cache(maxsize=1)
def sklearn_digits():
    """scikit-learn's handwritten digits: images (1797, 8, 8) float32 in
    0..16 and labels (1797,) int64, both read-only."""
    d = _sklearn_datasets().load_digits()
    images = np.ascontiguousarray(d.images, dtype=np.float32)
    labels = np.asarray(d.target, dtype=np.int64)
    images.setflags(write=False)
    labels.setflags(write=False)
    return images, labels


def matplotlib_data_dir() -> str:
    """matplotlib's ``mpl-data`` folder (fonts and sample photos)."""
    try:
        import matplotlib
    except ImportError as e:  # pragma: no cover - mmengine depends on it
        raise ImportError('the glyph dataset needs matplotlib (its bundled fonts '
                          'and photos); it comes with mmengine') from e
    return matplotlib.get_data_path()


@lru_cache(maxsize=1)
def photos():
    """``{name: RGB PIL image}`` of every bundled photo (scikit-learn's two,
    matplotlib's two)."""
    d = _sklearn_datasets().load_sample_images()
    out = {}
    for name, img in zip(d.filenames, d.images):
        out[osp.basename(name)] = Image.fromarray(np.ascontiguousarray(img, dtype=np.uint8))
    sample = osp.join(matplotlib_data_dir(), 'sample_data')
    for name in ('grace_hopper.jpg', 'Minduka_Present_Blue_Pack.png'):
        path = osp.join(sample, name)
        if not osp.isfile(path):
            raise FileNotFoundError(f'matplotlib sample photo {path} is missing')
        with Image.open(path) as img:
            out[name] = img.convert('RGB')
    return out


# --------------------------------------------------------------------------
# randomness
# --------------------------------------------------------------------------
def key(name: str) -> int:
    """A stable integer for a name (split names key the random streams)."""
    return zlib.crc32(name.encode('utf-8'))


def rng(seed, *spawn_key):
    """The random stream of ``seed`` for one purpose (``spawn_key``)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=spawn_key))


def style_plan(n, probs, generator):
    """Exact quotas (largest remainder) of each style, in a seeded order."""
    raw = np.asarray(probs) * n
    counts = np.floor(raw).astype(np.int64)
    rest = n - int(counts.sum())
    order = np.argsort(-(raw - counts), kind='stable')
    counts[order[:rest]] += 1
    plan = np.repeat(np.arange(len(probs)), counts)
    return generator.permutation(plan)


# --------------------------------------------------------------------------
# backgrounds
# --------------------------------------------------------------------------
@lru_cache(maxsize=8)
def _grid(size):
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    return xx, yy


def _two_colours(g, lo, hi):
    c0 = g.uniform(0, 255, 3)
    d = g.normal(size=3)
    d /= np.linalg.norm(d) + 1e-9
    c1 = np.clip(c0 + d * g.uniform(lo, hi), 0, 255)
    return c0, c1


def _bg_plain(g, size):
    c = g.uniform(0, 255, 3).astype(np.float32)
    return np.broadcast_to(c, (size, size, 3)).copy()


def _bg_gradient(g, size):
    c0, c1 = _two_colours(g, 60, 200)
    xx, yy = _grid(size)
    th = g.uniform(0, 2 * np.pi)
    t = xx * np.cos(th) + yy * np.sin(th)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    return (c0 + (c1 - c0) * t[..., None]).astype(np.float32)


def _value_noise(g, size, cells):
    v = g.uniform(0, 1, (cells, cells)).astype(np.float32)
    return np.asarray(Image.fromarray(v).resize((size, size), Image.BILINEAR), dtype=np.float32)


def _bg_texture(g, size):
    c0, c1 = _two_colours(g, 35, 80)
    xx, yy = _grid(size)
    kind = g.integers(3)
    th = g.uniform(0, np.pi)
    u = xx * np.cos(th) + yy * np.sin(th)
    v = -xx * np.sin(th) + yy * np.cos(th)
    if kind == 0:    # stripes
        period = g.uniform(6, 24)
        m = 0.5 + 0.5 * np.sin(2 * np.pi * u / period + g.uniform(0, 2 * np.pi))
        if g.random() < 0.5:
            m = (m > 0.5).astype(np.float32)
    elif kind == 1:  # rotated checkerboard
        cell = g.uniform(4, 16)
        m = ((np.floor(u / cell) + np.floor(v / cell)) % 2).astype(np.float32)
    else:            # smooth value noise plus grain
        cells = int(g.integers(4, 13))
        m = _value_noise(g, size, cells)
        m = np.clip(m + g.normal(0, 0.08, m.shape), 0, 1)
    return (c0 + (c1 - c0) * m[..., None]).astype(np.float32)


def _bg_photo(g, size, names, min_side):
    img = photos()[names[g.integers(len(names))]]
    w, h = img.size
    side = int(g.integers(min(min_side, min(w, h)), min(w, h) + 1))
    x0 = int(g.integers(0, w - side + 1))
    y0 = int(g.integers(0, h - side + 1))
    out = img.resize((size, size), Image.BILINEAR, box=(x0, y0, x0 + side, y0 + side))
    arr = np.asarray(out, dtype=np.float32)
    if g.random() < 0.5:
        arr = arr[:, ::-1]
    return np.ascontiguousarray(arr)


def background(style, g, size, photo_names=('china.jpg', 'flower.jpg'), photo_min_side=160):
    """A float32 ``(size, size, 3)`` RGB background in 0..255.

    Args:
        style (str): one of :data:`STYLES`: ``plain`` (one flat colour),
            ``gradient`` (two colours at a random angle), ``texture``
            (stripes, a rotated checkerboard or value noise between two
            nearby colours) or ``photo`` (a random square crop, at least
            ``photo_min_side`` px, of one of ``photo_names``, rescaled and
            randomly flipped).
        g (np.random.Generator): the image's random stream.
        size (int): side in pixels.
        photo_names (Sequence[str]): photos to crop (keys of :func:`photos`).
        photo_min_side (int): smallest crop side before rescaling.
    """
    if style == 'plain':
        return _bg_plain(g, size)
    if style == 'gradient':
        return _bg_gradient(g, size)
    if style == 'texture':
        return _bg_texture(g, size)
    if style == 'photo':
        return _bg_photo(g, size, list(photo_names), photo_min_side)
    raise ValueError(f'unknown background style {style!r}; known: {list(STYLES)}')


def contrast_colour(g, mean):
    """Of 16 random colours, the one farthest from ``mean`` (RGB); pure black
    or white if even that one is closer than :data:`MIN_CONTRAST`."""
    cands = g.uniform(0, 255, (16, 3))
    d = np.linalg.norm(cands - mean, axis=1)
    best = int(np.argmax(d))
    if d[best] < MIN_CONTRAST:
        return np.where(mean < 127.5, 255.0, 0.0)
    return cands[best]


# --------------------------------------------------------------------------
# boxes
# --------------------------------------------------------------------------
def tight(alpha, threshold=0.0):
    """Inclusive pixel box ``(x0, y0, x1, y1)`` of ``alpha > threshold``, or
    ``None`` when nothing is above it."""
    on = alpha > threshold
    rows = np.flatnonzero(on.any(axis=1))
    if len(rows) == 0:
        return None
    cols = np.flatnonzero(on.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]), int(rows[-1])


def iou(a, b):
    """IoU of two inclusive pixel boxes ``(x0, y0, x1, y1)``."""
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    area_a = (a[2] - a[0] + 1) * (a[3] - a[1] + 1)
    area_b = (b[2] - b[0] + 1) * (b[3] - b[1] + 1)
    return inter / (area_a + area_b - inter)


# --------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------
def is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def check_pair(value, name, lo_min, hi_max=None):
    """``[low, high]`` integers with ``lo_min <= low <= high <= hi_max``."""
    try:
        lo, hi = value
    except (TypeError, ValueError):
        raise ValueError(f'{name} must be a pair (low, high), got {value!r}') from None
    if not (is_int(lo) and is_int(hi)):
        raise ValueError(f'{name} must be two integers, got {value!r}')
    lo, hi = int(lo), int(hi)
    if lo < lo_min or hi < lo:
        raise ValueError(f'{name} must satisfy {lo_min} <= low <= high, got ({lo}, {hi})')
    if hi_max is not None and hi > hi_max:
        raise ValueError(f'{name} high end {hi} exceeds {hi_max}')
    return [lo, hi]


def check_seed(value, name='seed'):
    if not is_int(value) or value < 0:
        raise ValueError(f'{name} must be an integer >= 0, got {value!r}')
    return int(value)


def check_splits(splits):
    """``[[name, count], ...]`` from (name, count) pairs or a dict."""
    if isinstance(splits, dict):
        splits = list(splits.items())
    out = []
    for item in splits:
        try:
            name, count = item
        except (TypeError, ValueError):
            raise ValueError(f'splits must be (name, count) pairs, got {item!r}') from None
        if not isinstance(name, str) or not name or name != osp.basename(name) \
                or name in ('.', '..', 'annotations'):
            raise ValueError(f'bad split name {name!r} (a plain folder name, not "annotations")')
        if not is_int(count) or count < 1:
            raise ValueError(f'split {name!r} needs a positive integer count, got {count!r}')
        if name in [s for s, _ in out]:
            raise ValueError(f'split {name!r} given twice')
        out.append([name, int(count)])
    if not out:
        raise ValueError('splits is empty')
    return out


def check_image_size(value):
    if not is_int(value) or not 16 <= value <= 4096:
        raise ValueError(f'image_size must be an integer in 16..4096, got {value!r}')
    return int(value)


def check_styles(styles, known=STYLES):
    if isinstance(styles, str):
        styles = [styles]
    styles = list(styles)
    if not styles:
        raise ValueError('styles is empty')
    unknown = [s for s in styles if s not in known]
    if unknown:
        raise ValueError(f'unknown style name(s) {unknown}; known styles are {list(known)}')
    if len(set(styles)) != len(styles):
        raise ValueError(f'styles has duplicates: {styles}')
    return styles


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


def check_style_probs(style_probs, styles, split_names, known=STYLES):
    """``{split: [p per style]}`` from ``None`` (uniform), one per-style spec
    for every split, or ``{split: spec or None}``."""
    per_split = isinstance(style_probs, dict) and bool(style_probs) and \
        any(k in split_names for k in style_probs) and \
        not any(k in known for k in style_probs)
    if per_split:
        unknown = [k for k in style_probs if k not in split_names]
        if unknown:
            raise ValueError(f'style_probs names split(s) {unknown} that are not in '
                             f'splits {split_names}')
        return {name: _probs_for(style_probs.get(name), styles, f"['{name}']")
                for name in split_names}
    if isinstance(style_probs, dict) and style_probs:
        bad = [k for k in style_probs if k not in styles]
        if bad and all(k not in known for k in bad):
            raise ValueError(
                f'unknown style or split name(s) {bad} in style_probs; styles are '
                f'{styles}, splits are {split_names}')
    p = _probs_for(style_probs, styles, '')
    return {name: list(p) for name in split_names}


def check_group_map(group_map, styles, known=STYLES):
    """``{style: group}`` for every style; a style is its own group unless
    ``group_map`` says otherwise."""
    if group_map is None:
        group_map = {}
    if not isinstance(group_map, dict):
        raise ValueError(f'group_map must be a dict style -> group, got {group_map!r}')
    bad = [k for k in group_map if k not in known]
    if bad:
        raise ValueError(f'group_map has unknown style name(s) {bad}')
    return {s: str(group_map[s]) if s in group_map else s for s in styles}


# --------------------------------------------------------------------------
# writing and reading
# --------------------------------------------------------------------------
def write_json(path, obj, indent=None):
    """Write json atomically (a temporary file, then a rename)."""
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


def read_image_groups(ann_file, field='group'):
    """``{image id: value of field}`` of a generated COCO json (``group`` or ``style``)."""
    with open(ann_file, encoding='utf-8') as f:
        data = json.load(f)
    return {img['id']: img.get(field) for img in data['images']}


def generate_splits(out_dir, generator, header, cfg, classes, render, description,
                    supercategory, split_info=None):
    """Render every split of ``cfg`` into ``out_dir`` as COCO json + PNGs.

    ``settings.json`` is written first with ``complete: false`` and rewritten
    with ``complete: true`` at the end, so an interrupted run is recognised.

    Args:
        out_dir (str): output folder.
        generator (str): the generating module's name, stored in the settings.
        header (dict): ``generator_version`` and ``settings`` (``cfg``).
        cfg (dict): resolved settings with ``splits``, ``image_size``,
            ``styles``, ``style_probs``, ``groups`` and ``seed``.
        classes (Sequence[str]): category names (ids 1..len).
        render (callable): ``render(g, style, split, index) -> (img, anns)``;
            ``img`` is uint8 ``(H, W, 3)``, each ann a dict with ``bbox``
            (inclusive pixel box), ``label`` (0-based) and extra fields that
            are stored as they are.
        description (str): the json's ``info.description`` prefix.
        supercategory (str): every category's ``supercategory``.
        split_info (dict, optional): ``{split: dict}`` of extra fields for
            the split's entry in the settings' ``outputs``.

    Returns:
        dict: ``{split: path of its COCO json}``.
    """
    size = cfg['image_size']
    ann_dir = osp.join(out_dir, 'annotations')
    os.makedirs(ann_dir, exist_ok=True)
    settings_path = osp.join(out_dir, SETTINGS_FILE)
    header = dict(generator=generator, **header)
    write_json(settings_path, dict(header, complete=False), indent=2)
    categories = [dict(id=i + 1, name=c, supercategory=supercategory) for i, c in enumerate(classes)]
    result, outputs = {}, {}
    for split, count in cfg['splits']:
        img_dir = osp.join(out_dir, split)
        os.makedirs(img_dir, exist_ok=True)
        k = key(split)
        plan = style_plan(count, cfg['style_probs'][split], rng(cfg['seed'], 1, k, 0))
        images, annotations = [], []
        for i in range(count):
            style = cfg['styles'][plan[i]]
            img, anns = render(rng(cfg['seed'], 2, k, 0, i), style, split, i)
            file_name = IMAGE_NAME.format(i)
            Image.fromarray(img).save(osp.join(img_dir, file_name), format='PNG')
            images.append(dict(id=i + 1, file_name=file_name, width=size, height=size,
                               style=style, group=cfg['groups'][style]))
            for a in anns:
                x0, y0, x1, y1 = a['bbox']
                w, h = x1 - x0 + 1, y1 - y0 + 1
                extra = {k_: v for k_, v in a.items() if k_ not in ('bbox', 'label')}
                annotations.append(dict(
                    id=len(annotations) + 1, image_id=i + 1, category_id=a['label'] + 1,
                    bbox=[x0, y0, w, h], area=w * h, iscrowd=0, **extra))
        coco = dict(
            info=dict(description=f'{description}, split {split}',
                      version=str(header['generator_version']), seed=cfg['seed']),
            images=images, annotations=annotations, categories=categories)
        ann_path = osp.join(ann_dir, f'{split}.json')
        write_json(ann_path, coco)
        result[split] = ann_path
        outputs[split] = dict(ann_file=f'annotations/{split}.json', img_dir=f'{split}/',
                              images=len(images), annotations=len(annotations),
                              **(split_info or {}).get(split, {}))
    write_json(settings_path, dict(header, complete=True, outputs=outputs), indent=2)
    return result
