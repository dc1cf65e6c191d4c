"""A "web" pool for the glyph benchmark: unlabelled images of another
distribution, some of them irrelevant (KD^3, ``docs/webly.md``).

The benchmark's target data (:mod:`.glyphs`) stand for the teacher's
training set, which the student may not use. This pool stands for images
collected from the web instead. It comes from the same sources, rendered
differently, so that it shares the categories but not the distribution:

* **Other styles of the same glyphs.** No other font files ship in registry
  packages, and holding faces out of the target would change the target
  data, so the shift is in the rendering. Each image draws its glyphs in
  one of :data:`GLYPH_STYLES`: ``plain``, ``outline`` (only a one-pixel ring
  around the glyph) or ``bold`` (the glyph dilated). Each image is then
  post-processed by each of :data:`POST_OPS`, independently with
  probability ``post_prob``: ``blur`` (Gaussian, radius 1-2 px; the target
  blurs a quarter of its images by at most 0.8 px), ``jpeg`` (quality
  10-30), ``invert`` (the negative) and ``jitter`` (a channel permutation,
  per-channel gains 0.6-1.4 and a gamma 0.6-1.6). Glyph heights are 10-64 px
  and the aspect is stretched 0.6-1.6x (target: 12-64 px, 0.85-1.2x).
* **Other backgrounds** (:data:`BACKGROUNDS`), none of the target's four:
  ``mosaic`` (overlapping flat rectangles), ``noise`` (smoothed colour
  noise, 6-24 cells a side), ``lines`` (many thin random lines on a flat colour) and ``tinted``
  (a zoomed-in crop of a bundled photo with its channels permuted and
  scaled).
* **Irrelevant images**, an exact fraction ``irrelevant_fraction`` (default
  25 %): no glyph of the 20 classes, only glyphs outside the label set
  (:data:`OUT_OF_SET`: other upper- and lower-case letters, several of
  them look like digits: O, S, Z, I, B, G, l, o, s, z...), the target's
  distractors and clutter shapes. Relevant images also carry such glyphs
  as clutter.

Handwritten digits come from the training writer pool only; the held-out
writers stay for validation.

Layout (``out_dir``)::

    settings.json                     generation settings ("complete": true once done)
    annotations/web.json              COCO json, images only: "annotations": []
                                      (training reads this)
    annotations/web_truth.json        what was drawn, for analysis only (never read by training)
    web/000000.png ...                RGB images

``web.json`` carries the 20 benchmark categories, so that MMDetection's
``CocoDataset`` reads it with the benchmark's ``metainfo``. ``web_truth.json``
holds per image ``relevant``, ``background``, ``glyph_style`` and ``post``,
and the boxes of the class glyphs (COCO ``annotations``) plus the
out-of-set glyphs (``others``), e.g. to measure how well a selection keeps
relevant images (``tools/webly_selection_plot.py``).
"""
import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from . import common
from .common import read_settings  # noqa: F401 (tools/make_demo_data.py reads it here)
from .glyphs import (CLASSES, DISTRACTORS, PHOTOS, PRETRAIN_CLASSES, _faces_of, _glyph_patch,
                     _height, _Scene, _shape_patch)

__all__ = ['GENERATOR_VERSION', 'GLYPH_STYLES', 'POST_OPS', 'BACKGROUNDS', 'OUT_OF_SET',
           'STYLES', 'generate_glyphs_web', 'resolve_settings', 'read_settings']

GENERATOR_VERSION = 1
GLYPH_STYLES = ('plain', 'outline', 'bold')
POST_OPS = ('blur', 'jpeg', 'invert', 'jitter')
BACKGROUNDS = ('mosaic', 'noise', 'lines', 'tinted')
#: Glyphs that are neither classes nor the target's distractors.
OUT_OF_SET = tuple(c for c in PRETRAIN_CLASSES if c not in CLASSES and c not in DISTRACTORS)
#: The pool's one split; ``tools/make_demo_data.py`` looks for its json.
SPLIT = 'web'
#: make_demo_data.py reads ``STYLES`` of every generator; here the backgrounds.
STYLES = BACKGROUNDS

# Purposes of the random streams (common.rng's spawn keys). The target uses
# 1 (style plans), 2 (images) and 3 (pretraining crops); these differ.
_PLAN_STREAM, _IMAGE_STREAM = 8, 9


# --------------------------------------------------------------------------
# backgrounds
# --------------------------------------------------------------------------
def _bg_mosaic(g, size):
    canvas = np.broadcast_to(g.uniform(0, 255, 3), (size, size, 3)).astype(np.float32)
    for _ in range(int(g.integers(4, 13))):
        w, h = (int(v) for v in g.integers(size // 8, size // 2 + 1, 2))
        x, y = (int(v) for v in g.integers(0, size - 4, 2))
        canvas[y:y + h, x:x + w] = g.uniform(0, 255, 3)
    return canvas


def _bg_noise(g, size):
    cells = int(g.integers(6, 25))
    noise = g.uniform(0, 255, (cells, cells, 3)).astype(np.uint8)
    img = Image.fromarray(noise).resize((size, size), Image.BICUBIC)
    img = img.filter(ImageFilter.GaussianBlur(radius=float(g.uniform(0.5, 1.5))))
    return np.asarray(img, dtype=np.float32)


def _bg_lines(g, size):
    img = Image.new('RGB', (size, size), tuple(int(v) for v in g.integers(0, 256, 3)))
    draw = ImageDraw.Draw(img)
    for _ in range(int(g.integers(10, 31))):
        pts = [tuple(int(v) for v in g.integers(0, size, 2)) for _ in range(2)]
        draw.line(pts, fill=tuple(int(v) for v in g.integers(0, 256, 3)),
                  width=int(g.integers(1, 3)))
    return np.asarray(img, dtype=np.float32)


def _bg_tinted(g, size):
    photo = common.photos()[PHOTOS[g.integers(len(PHOTOS))]]
    w, h = photo.size
    side = int(g.integers(24, 65))  # zoomed in: the target crops at least 96 px
    x0, y0 = int(g.integers(0, w - side + 1)), int(g.integers(0, h - side + 1))
    crop = photo.resize((size, size), Image.BILINEAR, box=(x0, y0, x0 + side, y0 + side))
    arr = np.asarray(crop, dtype=np.float32)[..., g.permutation(3)]
    return np.clip(arr * g.uniform(0.6, 1.4, 3), 0, 255).astype(np.float32)


_BACKGROUNDS = dict(mosaic=_bg_mosaic, noise=_bg_noise, lines=_bg_lines, tinted=_bg_tinted)


# --------------------------------------------------------------------------
# glyphs and post-processing
# --------------------------------------------------------------------------
def _restyle(alpha, style, g):
    """A glyph's alpha drawn in ``style`` (see :data:`GLYPH_STYLES`), after an
    aspect stretch of 0.6-1.6x."""
    h, w = alpha.shape
    width = max(2, int(round(w * g.uniform(0.6, 1.6))))
    alpha = np.asarray(Image.fromarray(alpha).resize((width, h), Image.BILINEAR),
                       dtype=np.float32)
    if style == 'plain':
        return alpha
    pad = np.pad(alpha, 2)
    grown = np.asarray(Image.fromarray(np.uint8(np.rint(pad * 255))).filter(
        ImageFilter.MaxFilter(3)), dtype=np.float32) / 255.0
    if style == 'bold':
        return grown
    return np.clip(grown - pad, 0.0, 1.0)  # outline: the ring the dilation adds


def _post(g, img, ops):
    """Apply the post-processing ``ops`` (in :data:`POST_OPS` order)."""
    if 'blur' in ops:
        img = np.asarray(Image.fromarray(img).filter(
            ImageFilter.GaussianBlur(radius=float(g.uniform(1.0, 2.0)))))
    if 'jpeg' in ops:
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, format='JPEG', quality=int(g.integers(10, 31)))
        with Image.open(io.BytesIO(buf.getvalue())) as jpg:
            img = np.asarray(jpg.convert('RGB'))
    if 'invert' in ops:
        img = 255 - img
    if 'jitter' in ops:
        x = img[..., g.permutation(3)].astype(np.float32) / 255.0
        x = np.power(x, g.uniform(0.6, 1.6)) * g.uniform(0.6, 1.4, 3)
        img = np.clip(np.rint(x * 255), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img)


def _glyph(g, ch, cfg, style):
    faces = _faces_of(ch)
    alpha = _glyph_patch(g, ch, faces[g.integers(len(faces))],
                         _height(g, *cfg['height_range']), held_out=False)
    return None if alpha is None else _restyle(alpha, style, g)


def _render_web_image(g, relevant, cfg):
    """One pool image and what was drawn in it."""
    size = cfg['image_size']
    background = BACKGROUNDS[g.integers(len(BACKGROUNDS))]
    style = GLYPH_STYLES[g.integers(len(GLYPH_STYLES))]
    ops = [op for op in POST_OPS if g.random() < cfg['post_prob']]
    scene = _Scene(_BACKGROUNDS[background](g, size))
    lo_h, hi_h = cfg['height_range']

    def clutter():
        kind = g.random()
        if kind < 0.3:
            alpha = _glyph(g, DISTRACTORS[g.integers(len(DISTRACTORS))], cfg, style)
        elif kind < 0.6 and relevant:
            alpha = _glyph(g, OUT_OF_SET[g.integers(len(OUT_OF_SET))], cfg, style)
        else:
            alpha = _shape_patch(g, max(3, lo_h // 2), hi_h)
        if alpha is not None:
            scene.add_clutter(g, alpha)

    for _ in range(int(g.integers(cfg['clutter_per_image'][0],
                                  cfg['clutter_per_image'][1] + 1))):
        clutter()
    lo_n, hi_n = cfg['objects_per_image']
    for _ in range(int(g.integers(lo_n, hi_n + 1))):
        if relevant:
            label = int(g.integers(len(CLASSES)))
            ch = CLASSES[label]
        else:
            label, ch = None, DISTRACTORS[g.integers(len(DISTRACTORS))]
        alpha = _glyph(g, ch, cfg, style)
        if alpha is not None and alpha.shape[0] <= size and alpha.shape[1] <= size:
            scene.add_object(g, alpha, label, ch)
    img = _post(g, np.clip(np.rint(scene.canvas), 0, 255).astype(np.uint8), ops)
    anns = scene.annotations()
    return img, dict(relevant=bool(relevant), background=background, glyph_style=style,
                     post=ops), anns


# --------------------------------------------------------------------------
# settings and entry point
# --------------------------------------------------------------------------
def resolve_settings(images=3000, image_size=128, irrelevant_fraction=0.25,
                     objects_per_image=(1, 5), height_range=(10, 64),
                     clutter_per_image=(1, 5), post_prob=0.35, seed=0):
    """Validate the pool's arguments and return them normalised (plain json;
    ``splits`` names the one split, as the other generators' settings do).

    Raises ``ValueError`` naming the bad argument.
    """
    if not common.is_int(images) or images < 1:
        raise ValueError(f'images must be a positive integer, got {images!r}')
    image_size = common.check_image_size(image_size)
    for name, value in (('irrelevant_fraction', irrelevant_fraction), ('post_prob', post_prob)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
            raise ValueError(f'{name} must be in [0, 1], got {value!r}')
    objects_per_image = common.check_pair(objects_per_image, 'objects_per_image', 1)
    height_range = common.check_pair(height_range, 'height_range', 6, image_size // 2)
    clutter_per_image = common.check_pair(clutter_per_image, 'clutter_per_image', 0)
    return dict(images=int(images), splits=[[SPLIT, int(images)]], image_size=image_size,
                irrelevant_fraction=float(irrelevant_fraction),
                objects_per_image=objects_per_image, height_range=height_range,
                clutter_per_image=clutter_per_image, post_prob=float(post_prob),
                seed=common.check_seed(seed))


def generate_glyphs_web(out_dir, images=3000, image_size=128, irrelevant_fraction=0.25,
                        objects_per_image=(1, 5), height_range=(10, 64),
                        clutter_per_image=(1, 5), post_prob=0.35, seed=0):
    """Generate the web pool into ``out_dir`` (module docstring).

    Args:
        out_dir (str): output folder (created); files of the same names are
            replaced.
        images (int): pool size.
        image_size (int): side of the square RGB images.
        irrelevant_fraction (float): exact share of images without any class
            glyph (largest-remainder quota, seeded order).
        objects_per_image ((int, int)): class glyphs (relevant images) or
            out-of-set glyphs (irrelevant ones) tried per image.
        height_range ((int, int)): glyph height in pixels, log-uniform.
        clutter_per_image ((int, int)): distractors, out-of-set glyphs and
            shapes drawn first, under the objects.
        post_prob (float): probability of each post-processing op.
        seed (int): seeds everything; image ``i`` depends on ``(seed, i)`` only.

    Returns:
        dict: ``{'web': path of web.json, 'truth': path of web_truth.json}``.
    """
    import os
    import os.path as osp
    cfg = resolve_settings(images, image_size, irrelevant_fraction, objects_per_image,
                           height_range, clutter_per_image, post_prob, seed)
    header = dict(generator=__name__, generator_version=GENERATOR_VERSION, settings=cfg)
    settings_path = osp.join(out_dir, common.SETTINGS_FILE)
    img_dir, ann_dir = osp.join(out_dir, SPLIT), osp.join(out_dir, 'annotations')
    os.makedirs(img_dir, exist_ok=True)
    os.makedirs(ann_dir, exist_ok=True)
    common.write_json(settings_path, dict(header, complete=False), indent=2)
    f = cfg['irrelevant_fraction']
    irrelevant = common.style_plan(cfg['images'], [1 - f, f], common.rng(cfg['seed'], _PLAN_STREAM))
    categories = [dict(id=i + 1, name=c, supercategory='glyph') for i, c in enumerate(CLASSES)]
    images_, truth_images, truth_anns = [], [], []
    for i in range(cfg['images']):
        g = common.rng(cfg['seed'], _IMAGE_STREAM, i)
        img, info, anns = _render_web_image(g, not irrelevant[i], cfg)
        name = common.IMAGE_NAME.format(i)
        Image.fromarray(img).save(osp.join(img_dir, name), format='PNG')
        entry = dict(id=i + 1, file_name=name, width=cfg['image_size'],
                     height=cfg['image_size'])
        images_.append(entry)
        others = []
        for a in anns:
            x0, y0, x1, y1 = a['bbox']
            box = [x0, y0, x1 - x0 + 1, y1 - y0 + 1]
            if a['label'] is None:
                others.append(dict(bbox=box, char=a['face']))
                continue
            truth_anns.append(dict(id=len(truth_anns) + 1, image_id=i + 1,
                                   category_id=a['label'] + 1, bbox=box,
                                   area=box[2] * box[3], iscrowd=0, visible=a['visible']))
        truth_images.append(dict(entry, **info, others=others))
    info = dict(description='mmkd_plugins glyph web pool (unlabelled)',
                version=str(GENERATOR_VERSION), seed=cfg['seed'])
    web = osp.join(ann_dir, f'{SPLIT}.json')
    truth = osp.join(ann_dir, f'{SPLIT}_truth.json')
    common.write_json(web, dict(info=info, images=images_, annotations=[],
                                categories=categories))
    common.write_json(truth, dict(info=dict(info, description='what the glyph web pool '
                                            'shows: for analysis only, never for training'),
                                  images=truth_images, annotations=truth_anns,
                                  categories=categories))
    outputs = {SPLIT: dict(ann_file=f'annotations/{SPLIT}.json', img_dir=f'{SPLIT}/',
                           images=len(images_), truth=f'annotations/{SPLIT}_truth.json',
                           relevant=int((~irrelevant.astype(bool)).sum()))}
    common.write_json(settings_path, dict(header, complete=True, outputs=outputs), indent=2)
    return {SPLIT: web, 'truth': truth}
