"""Tests of the benchmark's glyph scenes and pretraining crops."""
import os
import os.path as osp
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest
from PIL import Image

pytest.importorskip('sklearn')

from conftest import file_tree, load_json  # noqa: E402
from mmkd_plugins.synthetic import glyphs  # noqa: E402
from mmkd_plugins.synthetic.glyphs import (CLASSES, DISTRACTORS, PRETRAIN_CLASSES,  # noqa: E402
                                           dataset_meta, generate_glyphs_detection,
                                           glyph_crops, read_image_groups, read_settings,
                                           resolve_settings)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = dict(splits=(('train', 10), ('val', 6)), image_size=96, height_range=(8, 40))


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('glyphs'))
    return out, generate_glyphs_detection(out, seed=4, **TINY)


def test_classes_and_sources():
    assert len(CLASSES) == 20 and len(set(CLASSES)) == 20
    assert not set(DISTRACTORS) & set(CLASSES)
    assert set(CLASSES) <= set(PRETRAIN_CLASSES) and len(PRETRAIN_CLASSES) == 62
    meta = dataset_meta()
    assert meta['classes'] == CLASSES and len(set(meta['palette'])) == 20
    # every class and distractor is drawn in every font face; digits also
    # in handwriting
    for ch in CLASSES + DISTRACTORS:
        faces = glyphs._faces_of(ch)
        assert len(faces) == len(glyphs.FACES) + ch.isdigit(), ch


def test_deterministic(tmp_path):
    a, b, c = (str(tmp_path / n) for n in 'abc')
    generate_glyphs_detection(a, seed=5, **TINY)
    generate_glyphs_detection(b, seed=5, **TINY)
    generate_glyphs_detection(c, seed=6, **TINY)
    ta, tb, tc = file_tree(a), file_tree(b), file_tree(c)
    assert len(ta) == 10 + 6 + 2 + 1
    assert ta == tb
    assert ta['annotations/train.json'] != tc['annotations/train.json']
    assert ta['train/000000.png'] != tc['train/000000.png']


def test_coco_json_and_boxes(tiny):
    out, paths = tiny
    for split, n in (('train', 10), ('val', 6)):
        coco = load_json(paths[split])
        assert [c['name'] for c in coco['categories']] == list(CLASSES)
        assert [i['id'] for i in coco['images']] == list(range(1, n + 1))
        assert all(i['group'] == i['style'] for i in coco['images'])
        assert coco['annotations'], split
        for a in coco['annotations']:
            x, y, w, h = a['bbox']
            assert 0 <= x and 0 <= y and x + w <= 96 and y + h <= 96
            assert w >= 1 and h >= 1 and a['area'] == w * h
            assert 1 <= a['category_id'] <= 20
            assert 0.5 <= a['visible'] <= 1.0
            assert a['face'] in glyphs.FACES + (glyphs.HANDWRITTEN,)
            if a['face'] == glyphs.HANDWRITTEN:
                assert CLASSES[a['category_id'] - 1].isdigit()
    settings = read_settings(out)
    assert settings['complete'] and settings['generator'] == 'mmkd_plugins.synthetic.glyphs'
    assert settings['outputs']['val']['images'] == 6


def test_boxes_are_tight_around_visible_pixels(tmp_path):
    # On a plain background without clutter or noise, the pixels that differ
    # from the background colour are exactly the union of the glyphs' boxes.
    paths = generate_glyphs_detection(
        str(tmp_path), splits=(('train', 6),), image_size=64, height_range=(12, 24),
        clutter_per_image=(0, 0), occluded_fraction=0.0, styles=('plain',), seed=2)
    coco = load_json(paths['train'])
    for img in coco['images']:
        arr = np.asarray(Image.open(tmp_path / 'train' / img['file_name']), dtype=np.int32)
        anns = [a for a in coco['annotations'] if a['image_id'] == img['id']]
        for a in anns:
            x, y, w, h = a['bbox']
            inside = arr[y:y + h, x:x + w]
            # noise is at most ~6 sd; a glyph's pixels differ far more than that
            # from the background colour (the image's most common colour is close to it)
            bg = np.median(arr.reshape(-1, 3), axis=0)
            strong = np.abs(inside - bg).max(axis=2) > 40
            assert strong[0].any() and strong[-1].any() and strong[:, 0].any() \
                and strong[:, -1].any(), a


def test_style_probs_give_exact_quotas(tmp_path):
    paths = generate_glyphs_detection(
        str(tmp_path), splits=(('train', 20), ('val', 8)), image_size=48,
        height_range=(8, 16), seed=1,
        style_probs=dict(train=dict(plain=0.5, gradient=0.25, texture=0.2, photo=0.05)))
    train = Counter(read_image_groups(paths['train']).values())
    val = Counter(read_image_groups(paths['val']).values())
    assert train == {'plain': 10, 'gradient': 5, 'texture': 4, 'photo': 1}
    assert val == {'plain': 2, 'gradient': 2, 'texture': 2, 'photo': 2}


def test_writer_pools_disjoint():
    _, labels = glyphs.common.sklearn_digits()
    held, train = glyphs._writer_pool(True), glyphs._writer_pool(False)
    assert not set(held) & set(train)
    assert len(held) + len(train) == len(labels)
    assert set(labels[held]) == set(range(10))


def test_crops_deterministic_per_index():
    a, la = glyph_crops(6, 32, seed=3)
    b, lb = glyph_crops(4, 32, seed=3)
    c, lc = glyph_crops(4, 32, seed=4)
    assert a.shape == (6, 32, 32, 3) and a.dtype == np.uint8
    assert np.array_equal(a[:4], b) and np.array_equal(la[:4], lb)
    assert not np.array_equal(b, c)
    assert la.min() >= 0 and la.max() < len(PRETRAIN_CLASSES)
    _, many = glyph_crops(300, 16, seed=0)
    assert len(set(many.tolist())) > 50  # labels cover the 62 classes


@pytest.mark.parametrize('kwargs, message', [
    (dict(height_range=(4, 20)), 'height_range'),
    (dict(height_range=(8, 100)), 'exceeds 64'),
    (dict(objects_per_image=(3, 2)), 'low <= high'),
    (dict(occluded_fraction=1.5), 'occluded_fraction'),
    (dict(styles=('plain', 'neon')), 'unknown style'),
    (dict(style_probs=dict(plain=0.5)), 'sum to 1'),
])
def test_resolve_settings_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        resolve_settings(**kwargs)


def test_crops_errors():
    with pytest.raises(ValueError, match='n must be'):
        glyph_crops(0)
    with pytest.raises(ValueError, match='size must be'):
        glyph_crops(2, size=8)


def test_cli_glyphs(tmp_path):
    out = str(tmp_path / 'g')
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'make_demo_data.py'), '--dataset', 'glyphs',
           '--out', out, '--train', '4', '--val', '2', '--size', '64', '--scale-range', '8', '24']
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert 'wrote 6 images' in res.stdout
    assert read_settings(out)['settings']['height_range'] == [8, 24]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and 'identical settings' in res.stdout
    # a digits dataset asked for in the same folder is refused, nothing touched
    before = file_tree(out)
    res = subprocess.run(cmd[:2] + ['--dataset', 'digits'] + cmd[4:], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 1 and 'refusing' in res.stderr
    assert file_tree(out) == before


def test_loads_with_mmdet_coco_dataset(tiny):
    from mmdet.datasets import CocoDataset
    from mmdet.utils import register_all_modules
    register_all_modules()
    out, paths = tiny
    ds = CocoDataset(
        data_root=out, ann_file='annotations/val.json', data_prefix=dict(img='val/'),
        metainfo=dataset_meta(),
        pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True)])
    coco = load_json(paths['val'])
    assert ds.metainfo['classes'] == CLASSES
    sample = ds[0]
    assert sample['img'].shape == (96, 96, 3)
    n = sum(a['image_id'] == sample['img_id'] for a in coco['annotations'])
    assert len(sample['gt_bboxes']) == n


def test_target_data_unchanged_by_the_web_pool(tmp_path):
    """The web pool (glyphs_web.py) reuses this module's glyph sources; the
    target data must stay what the teacher was trained on. Digests computed
    before the web pool was added (Pillow/numpy of this environment)."""
    import hashlib
    generate_glyphs_detection(str(tmp_path), seed=4, **TINY)
    h = hashlib.sha256()
    for root, _, files in sorted(os.walk(str(tmp_path))):
        for f in sorted(files):
            path = osp.join(root, f)
            h.update(osp.relpath(path, str(tmp_path)).encode())
            with open(path, 'rb') as fh:
                h.update(fh.read())
    assert h.hexdigest() == '0776c350902f7974df0e4a3bfc781bca712fa1bb52b4d0832e7e3c9e141675d7'
    images, labels = glyph_crops(6, size=32, seed=3)
    assert hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest() == \
        '6e5f3140820465d18c51a2b8bd8976a059aa4ae3df303bd499569cfdeaf4c3c6'
