"""The benchmark dataset: printed and handwritten glyphs in cluttered scenes.

A miniature of a COCO-style detection problem, made offline from sources
that ship inside registry packages (see :mod:`.common`):

* **20 classes**: the digits ``0-9`` and the letters ``A C E F H K M P R X``
  (:data:`CLASSES`), printed in 18 faces of matplotlib's bundled fonts
  (DejaVu Sans / Sans Mono / Serif, STIX, Computer Modern; regular, bold,
  italic) and, for the digits, also in real handwriting (scikit-learn's
  8x8 digits, one more "face").
* **Objects at several scales**: glyph heights log-uniform in
  ``height_range`` (default 12..64 px on 128 px images), aspect jitter,
  rotation up to +-15 degrees, 20 % of the glyphs filled with a gradient.
* **Clutter**: unlabelled distractor glyphs (:data:`DISTRACTORS`: lower-case
  letters and symbols that are not classes), line strokes, rectangles and
  ellipses, drawn under and over the objects.
* **Partial occlusion**: objects overlap each other and occluding shapes are
  placed over 30 % of them, but no object keeps less than half of its
  pixels. Boxes are the tight box of the *visible* pixels, as in COCO.
* **Backgrounds**, each image's ``style`` and ``group``: ``plain``,
  ``gradient``, ``texture`` and ``photo`` (crops of scikit-learn's and
  matplotlib's four bundled photos). ``style_probs`` makes imbalanced
  variants for the group-robust suite.

:func:`glyph_crops` renders the classification data that backbones are
pretrained on (62 classes: digits, upper- and lower-case letters, the
distractors among them), the counterpart of ImageNet pretraining for COCO.

The handwritten digits are split into disjoint writer pools by split name
(``val``/``test`` use one fifth of them, everything else the rest), so
validation handwriting is never seen in training or pretraining.

Layout and COCO fields are those of :mod:`.digits`; annotations also carry
``face`` (the font or ``handwritten``) and ``visible`` (the fraction of the
glyph's pixels left visible after occlusion).
"""
import string
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from . import common
from .common import STYLES, read_image_groups, read_settings  # noqa: F401
from .digits import _glyph_alpha

__all__ = [
    'CLASSES', 'DISTRACTORS', 'PRETRAIN_CLASSES', 'FACES', 'STYLES', 'GENERATOR_VERSION',
    'dataset_meta', 'generate_glyphs_detection', 'glyph_crops', 'resolve_settings',
    'read_settings', 'read_image_groups',
]

GENERATOR_VERSION = 1
CLASSES = tuple('0123456789') + tuple('ACEFHKMPRX')
DISTRACTORS = tuple('adhnrt') + tuple('#&?%@+*')
PRETRAIN_CLASSES = tuple(string.digits + string.ascii_uppercase + string.ascii_lowercase)
# matplotlib's bundled TrueType faces (mpl-data/fonts/ttf) with normal
# letter and digit shapes (cmmi10's old-style digits and the symbol fonts
# are left out).
FACES = (
    'DejaVuSans.ttf', 'DejaVuSans-Bold.ttf', 'DejaVuSans-Oblique.ttf',
    'DejaVuSans-BoldOblique.ttf', 'DejaVuSansMono.ttf', 'DejaVuSansMono-Bold.ttf',
    'DejaVuSerif.ttf', 'DejaVuSerif-Bold.ttf', 'DejaVuSerif-Italic.ttf',
    'DejaVuSerif-BoldItalic.ttf', 'STIXGeneral.ttf', 'STIXGeneralBol.ttf',
    'STIXGeneralItalic.ttf', 'STIXGeneralBolIta.ttf', 'cmr10.ttf', 'cmss10.ttf',
    'cmtt10.ttf', 'cmb10.ttf')
HANDWRITTEN = 'handwritten'
PHOTOS = ('china.jpg', 'flower.jpg', 'grace_hopper.jpg', 'Minduka_Present_Blue_Pack.png')
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40),
           (148, 103, 189), (140, 86, 75), (227, 119, 194), (127, 127, 127),
           (188, 189, 34), (23, 190, 207), (174, 199, 232), (255, 187, 120),
           (152, 223, 138), (255, 152, 150), (197, 176, 213), (196, 156, 148),
           (247, 182, 210), (199, 199, 199), (219, 219, 141), (158, 218, 229)]

_RENDER_PX = 64          # font size the glyph bank is rendered at
_MIN_VISIBLE = 0.5       # an object keeps at least this fraction of its pixels
_MAX_IOU = 0.3           # max IoU between two objects' full boxes
_TRIES = 8               # placements tried per object or occluder
_VISIBLE_ALPHA = 0.2     # a pixel belongs to a glyph from this coverage on
_HELD_OUT_SPLITS = ('val', 'test')


def dataset_meta():
    """Metainfo for mmdet datasets: ``metainfo=dataset_meta()``."""
    return dict(classes=CLASSES, palette=list(PALETTE))


# --------------------------------------------------------------------------
# glyph sources
# --------------------------------------------------------------------------
@lru_cache(maxsize=1)
def _glyph_bank():
    """``{(face, char): tight float32 alpha in 0..1}`` for every font face and
    every character of the pretraining classes and distractors that the face
    has (a face without a glyph draws its 'missing' box, which is skipped)."""
    import os.path as osp
    font_dir = osp.join(common.matplotlib_data_dir(), 'fonts', 'ttf')
    chars = sorted(set(PRETRAIN_CLASSES) | set(DISTRACTORS))
    bank = {}
    for face in FACES:
        path = osp.join(font_dir, face)
        if not osp.isfile(path):
            raise FileNotFoundError(f'font {path} is missing from matplotlib')
        font = ImageFont.truetype(path, _RENDER_PX)
        missing = _render(font, '\uffff')
        for ch in chars:
            alpha = _render(font, ch)
            if alpha is None or (missing is not None and alpha.shape == missing.shape
                                 and np.array_equal(alpha, missing)):
                continue
            bank[face, ch] = alpha
    for v in bank.values():
        v.setflags(write=False)
    return bank


def _render(font, ch):
    side = 2 * _RENDER_PX
    img = Image.new('L', (side, side), 0)
    ImageDraw.Draw(img).text((_RENDER_PX // 2, _RENDER_PX // 4), ch, font=font, fill=255)
    a = np.asarray(img, dtype=np.float32) / 255.0
    box = common.tight(a, _VISIBLE_ALPHA)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    return np.ascontiguousarray(a[y0:y1 + 1, x0:x1 + 1])


@lru_cache(maxsize=4)
def _writer_pool(held_out: bool):
    """Indices of scikit-learn's digits in the held-out (``val``/``test``) or
    the training writer pool: a seeded fifth per class is held out."""
    _, labels = common.sklearn_digits()
    keep = []
    for c in range(10):
        idx = common.rng(0, 7, c).permutation(np.flatnonzero(labels == c))
        cut = len(idx) // 5
        keep.extend((idx[:cut] if held_out else idx[cut:]).tolist())
    return np.sort(np.asarray(keep, dtype=np.int64))


def _faces_of(ch):
    faces = [f for f in FACES if (f, ch) in _glyph_bank()]
    if ch.isdigit():
        faces.append(HANDWRITTEN)
    return faces


def _glyph_patch(g, ch, face, height, held_out, rotate=True):
    """The alpha ``(h, w)`` of ``ch`` in ``face``, ``height`` px tall before
    rotation, with aspect jitter and (70 %) a rotation of up to 15 degrees."""
    if face == HANDWRITTEN:
        images, labels = common.sklearn_digits()
        pool = _writer_pool(held_out)
        pool = pool[labels[pool] == int(ch)]
        src = images[pool[g.integers(len(pool))]]
        width = max(3, int(round(height * g.uniform(0.75, 1.05))))
        base = _glyph_alpha(src, width, height)
    else:
        ref = _glyph_bank()[face, ch]
        h0, w0 = ref.shape
        width = max(2, int(round(height * w0 / h0 * g.uniform(0.85, 1.2))))
        img = Image.fromarray(ref).resize((width, height), Image.BILINEAR)
        base = np.asarray(img, dtype=np.float32)
    if rotate and g.random() < 0.7:
        img = Image.fromarray(np.ascontiguousarray(base)).rotate(
            float(g.uniform(-15, 15)), resample=Image.BILINEAR, expand=True)
        base = np.asarray(img, dtype=np.float32)
    base = np.clip(base, 0.0, 1.0)
    base[base < _VISIBLE_ALPHA] = 0.0
    box = common.tight(base)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    return np.ascontiguousarray(base[y0:y1 + 1, x0:x1 + 1])


def _shape_patch(g, lo, hi):
    """An unlabelled shape: a stroke, a rectangle or an ellipse (filled or
    outlined), as an alpha patch of side ``lo..hi`` px."""
    w = int(g.integers(lo, hi + 1))
    h = int(g.integers(lo, hi + 1))
    img = Image.new('L', (w, h), 0)
    draw = ImageDraw.Draw(img)
    kind = g.integers(3)
    width = int(g.integers(1, 4))
    if kind == 0:
        pts = [(0, int(g.integers(0, h))), (w - 1, int(g.integers(0, h)))]
        if g.random() < 0.5:
            pts = [(p[1] * (w - 1) // max(h - 1, 1), p[0] * (h - 1) // max(w - 1, 1))
                   for p in pts]
        draw.line(pts, fill=255, width=width)
    elif kind == 1:
        if g.random() < 0.5:
            draw.rectangle([0, 0, w - 1, h - 1], fill=255)
        else:
            draw.rectangle([0, 0, w - 1, h - 1], outline=255, width=width)
    else:
        if g.random() < 0.5:
            draw.ellipse([0, 0, w - 1, h - 1], fill=255)
        else:
            draw.ellipse([0, 0, w - 1, h - 1], outline=255, width=width)
    return np.asarray(img, dtype=np.float32) / 255.0


# --------------------------------------------------------------------------
# compositing with occlusion bookkeeping
# --------------------------------------------------------------------------
class _Scene:
    """A canvas and its objects; every layer drawn updates how much of each
    earlier object stays visible, and a layer that would leave an object
    less than half visible is refused."""

    def __init__(self, canvas):
        self.canvas = canvas
        self.size = canvas.shape[0]
        self.objects = []  # dicts: x, y, alpha, vis, label, face

    def _overlaps(self, x, y, alpha):
        h, w = alpha.shape
        for obj in self.objects:
            oh, ow = obj['alpha'].shape
            x0, y0 = max(x, obj['x']), max(y, obj['y'])
            x1, y1 = min(x + w, obj['x'] + ow), min(y + h, obj['y'] + oh)
            if x1 > x0 and y1 > y0:
                yield obj, (slice(y0 - y, y1 - y), slice(x0 - x, x1 - x)), \
                    (slice(y0 - obj['y'], y1 - obj['y']), slice(x0 - obj['x'], x1 - obj['x']))

    def fits(self, x, y, alpha):
        """Whether drawing ``alpha`` at ``(x, y)`` keeps every object at
        least half visible."""
        for obj, mine, theirs in self._overlaps(x, y, alpha):
            vis = obj['vis'].copy()
            vis[theirs] *= 1.0 - alpha[mine]
            if (obj['alpha'] * vis).sum() < _MIN_VISIBLE * obj['area']:
                return False
        return True

    def draw(self, g, x, y, alpha, gradient=False):
        """Paint ``alpha`` at ``(x, y)`` in a colour that contrasts with the
        canvas under it (a two-colour gradient if ``gradient``)."""
        for obj, mine, theirs in self._overlaps(x, y, alpha):
            obj['vis'][theirs] *= 1.0 - alpha[mine]
        h, w = alpha.shape
        patch = self.canvas[y:y + h, x:x + w]
        mean = patch.reshape(-1, 3).mean(axis=0).astype(np.float64)
        colour = common.contrast_colour(g, mean).astype(np.float32)
        if gradient:
            other = common.contrast_colour(g, mean).astype(np.float32)
            t = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
            colour = colour * (1 - t) + other * t
        a = alpha[..., None]
        patch[...] = patch * (1 - a) + colour * a

    def place(self, g, alpha, avoid_boxes):
        """A random position for ``alpha`` that fits, or ``None``."""
        h, w = alpha.shape
        if h > self.size or w > self.size:
            return None
        for _ in range(_TRIES):
            x = int(g.integers(0, self.size - w + 1))
            y = int(g.integers(0, self.size - h + 1))
            box = (x, y, x + w - 1, y + h - 1)
            if avoid_boxes and any(common.iou(box, (o['x'], o['y'], o['x'] + o['alpha'].shape[1]
                                                    - 1, o['y'] + o['alpha'].shape[0] - 1))
                                   >= _MAX_IOU for o in self.objects):
                continue
            if self.fits(x, y, alpha):
                return x, y
        return None

    def add_object(self, g, alpha, label, face):
        pos = self.place(g, alpha, avoid_boxes=True)
        if pos is None:
            return False
        x, y = pos
        self.draw(g, x, y, alpha, gradient=g.random() < 0.2)
        self.objects.append(dict(x=x, y=y, alpha=alpha, vis=np.ones_like(alpha),
                                 area=float(alpha.sum()), label=label, face=face))
        return True

    def add_clutter(self, g, alpha):
        pos = self.place(g, alpha, avoid_boxes=False)
        if pos is not None:
            self.draw(g, pos[0], pos[1], alpha)

    def add_occluder(self, g, obj):
        """A shape over part of ``obj`` (if one fits)."""
        oh, ow = obj['alpha'].shape
        side = max(4, int(max(oh, ow) * g.uniform(0.3, 0.8)))
        alpha = _shape_patch(g, max(3, side // 2), side)
        h, w = alpha.shape
        for _ in range(_TRIES):
            x = int(np.clip(obj['x'] + g.integers(-w + 2, ow - 1), 0, self.size - w))
            y = int(np.clip(obj['y'] + g.integers(-h + 2, oh - 1), 0, self.size - h))
            if self.fits(x, y, alpha):
                self.draw(g, x, y, alpha)
                return

    def annotations(self):
        anns = []
        for obj in self.objects:
            visible = obj['alpha'] * obj['vis']
            box = common.tight(visible, _VISIBLE_ALPHA)
            if box is None:  # cannot happen with _MIN_VISIBLE > 0; kept explicit
                continue
            x0, y0, x1, y1 = box
            anns.append(dict(bbox=(obj['x'] + x0, obj['y'] + y0, obj['x'] + x1, obj['y'] + y1),
                             label=obj['label'], face=obj['face'],
                             visible=round(float(visible.sum()) / obj['area'], 3)))
        return anns


def _height(g, lo, hi):
    """Log-uniform integer height in ``lo..hi``: as many small glyphs as
    large ones per octave, like COCO's long tail of small objects."""
    return int(round(np.exp(g.uniform(np.log(lo), np.log(hi + 0.5)))))


def _postprocess(g, canvas):
    """Sensor-like noise on every image, a slight blur on a quarter of them."""
    img = canvas + g.normal(0, g.uniform(0, 6), canvas.shape).astype(np.float32)
    img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    if g.random() < 0.25:
        from PIL import ImageFilter
        img = np.asarray(Image.fromarray(img).filter(
            ImageFilter.GaussianBlur(radius=float(g.uniform(0.3, 0.8)))))
    return img


def _render_image(g, style, cfg, held_out):
    size = cfg['image_size']
    lo_h, hi_h = cfg['height_range']
    scene = _Scene(common.background(style, g, size, PHOTOS, photo_min_side=96))
    n_clutter = int(g.integers(cfg['clutter_per_image'][0], cfg['clutter_per_image'][1] + 1))
    under = int(g.integers(0, n_clutter + 1))

    def clutter():
        if g.random() < 0.5:
            ch = DISTRACTORS[g.integers(len(DISTRACTORS))]
            faces = _faces_of(ch)
            alpha = _glyph_patch(g, ch, faces[g.integers(len(faces))],
                                 _height(g, lo_h, hi_h), held_out)
        else:
            alpha = _shape_patch(g, max(3, lo_h // 2), hi_h)
        if alpha is not None:
            scene.add_clutter(g, alpha)

    for _ in range(under):
        clutter()
    n = int(g.integers(cfg['objects_per_image'][0], cfg['objects_per_image'][1] + 1))
    for _ in range(n):
        label = int(g.integers(len(CLASSES)))
        faces = _faces_of(CLASSES[label])
        face = faces[g.integers(len(faces))]
        alpha = _glyph_patch(g, CLASSES[label], face, _height(g, lo_h, hi_h), held_out)
        if alpha is not None:
            scene.add_object(g, alpha, label, face)
    for obj in list(scene.objects):
        if g.random() < cfg['occluded_fraction']:
            scene.add_occluder(g, obj)
    for _ in range(n_clutter - under):
        clutter()
    return _postprocess(g, scene.canvas), scene.annotations()


# --------------------------------------------------------------------------
# settings and entry points
# --------------------------------------------------------------------------
def resolve_settings(splits=(('train', 3000), ('val', 1000)), image_size=128,
                     objects_per_image=(2, 6), height_range=(12, 64),
                     clutter_per_image=(0, 4), occluded_fraction=0.25,
                     styles=STYLES, style_probs=None, seed=0, group_map=None):
    """Validate the generator's arguments and return them normalised (plain
    json, so equal settings compare equal after a json round trip).

    Raises ``ValueError`` naming the bad argument.
    """
    seed = common.check_seed(seed)
    norm_splits = common.check_splits(splits)
    image_size = common.check_image_size(image_size)
    objects_per_image = common.check_pair(objects_per_image, 'objects_per_image', 0)
    if objects_per_image[1] < 1:
        raise ValueError('objects_per_image high end must be >= 1')
    height_range = common.check_pair(height_range, 'height_range', 6, image_size // 2)
    clutter_per_image = common.check_pair(clutter_per_image, 'clutter_per_image', 0)
    if not isinstance(occluded_fraction, (int, float)) or not 0 <= occluded_fraction <= 1:
        raise ValueError(f'occluded_fraction must be in [0, 1], got {occluded_fraction!r}')
    styles = common.check_styles(styles)
    probs = common.check_style_probs(style_probs, styles, [s for s, _ in norm_splits])
    groups = common.check_group_map(group_map, styles)
    return dict(splits=norm_splits, image_size=image_size, objects_per_image=objects_per_image,
                height_range=height_range, clutter_per_image=clutter_per_image,
                occluded_fraction=float(occluded_fraction), styles=styles,
                style_probs=probs, groups=groups, seed=seed)


def generate_glyphs_detection(out_dir, splits=(('train', 3000), ('val', 1000)),
                              image_size=128, objects_per_image=(2, 6),
                              height_range=(12, 64), clutter_per_image=(0, 4),
                              occluded_fraction=0.25, styles=STYLES, style_probs=None,
                              seed=0, group_map=None):
    """Generate the glyph detection dataset into ``out_dir``.

    Args:
        out_dir: output folder (created); files of the same names are replaced.
        splits: ``(name, image count)`` pairs (or a dict). ``val`` and
            ``test`` draw handwriting from the held-out writers.
        image_size: side of the square RGB images.
        objects_per_image: ``(min, max)`` labelled glyphs tried per image; a
            glyph that finds no place (box IoU < 0.3 with the others, every
            object at least half visible) in 8 tries is skipped.
        height_range: ``(min, max)`` glyph height in pixels, log-uniform.
        clutter_per_image: ``(min, max)`` unlabelled items (distractor
            glyphs and shapes), some drawn under the objects, the rest over.
        occluded_fraction: share of objects that get an occluding shape.
        styles: background styles, a subset of :data:`STYLES`.
        style_probs: ``None`` (uniform), per-style probabilities for every
            split, or ``{split: probabilities}``; exact quotas per split.
        seed: seeds everything.
        group_map: optional ``{style: group}``; the group defaults to the style.

    Returns:
        dict: ``{split: path of its COCO json}``.
    """
    cfg = resolve_settings(splits, image_size, objects_per_image, height_range,
                           clutter_per_image, occluded_fraction, styles, style_probs, seed,
                           group_map)
    return common.generate_splits(
        out_dir, 'mmkd_plugins.synthetic.glyphs',
        dict(generator_version=GENERATOR_VERSION, settings=cfg), cfg, CLASSES,
        lambda g, style, split, i: _render_image(g, style, cfg, split in _HELD_OUT_SPLITS),
        'mmkd_plugins benchmark glyphs', 'glyph')


def glyph_crops(n, size=32, seed=0, held_out=False):
    """Classification crops for backbone pretraining.

    Each crop shows one glyph of :data:`PRETRAIN_CLASSES` (digits, upper-
    and lower-case letters) in a random face, 45-85 % of the crop tall,
    off-centre by up to an eighth of the crop, on a random background style
    with up to two unlabelled shapes.

    Args:
        n (int): number of crops.
        size (int): crop side in pixels.
        seed (int): seeds everything; crop ``i`` depends only on
            ``(seed, i)``.
        held_out (bool): draw handwriting from the held-out writer pool.

    Returns:
        tuple: uint8 images ``(n, size, size, 3)`` and int64 labels ``(n,)``
        indexing :data:`PRETRAIN_CLASSES`.
    """
    if not common.is_int(n) or n < 1:
        raise ValueError(f'n must be a positive integer, got {n!r}')
    if not common.is_int(size) or size < 16:
        raise ValueError(f'size must be an integer >= 16, got {size!r}')
    images = np.empty((n, size, size, 3), np.uint8)
    labels = np.empty(n, np.int64)
    for i in range(n):
        g = common.rng(common.check_seed(seed), 3, i)
        label = int(g.integers(len(PRETRAIN_CLASSES)))
        ch = PRETRAIN_CLASSES[label]
        style = STYLES[g.integers(len(STYLES))]
        scene = _Scene(common.background(style, g, size, PHOTOS, photo_min_side=48))
        for _ in range(int(g.integers(0, 3))):
            scene.add_clutter(g, _shape_patch(g, 3, size // 2))
        faces = _faces_of(ch)
        alpha = None
        while alpha is None:
            alpha = _glyph_patch(g, ch, faces[g.integers(len(faces))],
                                 int(size * g.uniform(0.45, 0.85)), held_out)
        h, w = alpha.shape
        h, w = min(h, size), min(w, size)
        alpha = alpha[:h, :w]
        jitter = size // 8
        x = int(np.clip((size - w) // 2 + g.integers(-jitter, jitter + 1), 0, size - w))
        y = int(np.clip((size - h) // 2 + g.integers(-jitter, jitter + 1), 0, size - h))
        scene.draw(g, x, y, alpha, gradient=g.random() < 0.2)
        images[i] = _postprocess(g, scene.canvas)
        labels[i] = label
    return images, labels
