"""Tests of the unlabelled web pool of the glyph benchmark (KD^3)."""
import os
import os.path as osp
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

pytest.importorskip('sklearn')

from conftest import file_tree, load_json  # noqa: E402
from mmkd_plugins.synthetic import glyphs_web  # noqa: E402
from mmkd_plugins.synthetic.glyphs import CLASSES, DISTRACTORS  # noqa: E402
from mmkd_plugins.synthetic.glyphs_web import (OUT_OF_SET, generate_glyphs_web,  # noqa: E402
                                               read_settings, resolve_settings)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = dict(images=12, image_size=64, height_range=(8, 30))


@pytest.fixture(scope='module')
def pool(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('web'))
    return out, generate_glyphs_web(out, seed=3, **TINY)


def test_out_of_set_glyphs_are_neither_classes_nor_distractors():
    assert len(OUT_OF_SET) == 62 - 20 - 6  # the six lower-case distractors
    assert not set(OUT_OF_SET) & (set(CLASSES) | set(DISTRACTORS))
    assert {'O', 'S', 'Z', 'o', 'l'} <= set(OUT_OF_SET)


def test_layout_unlabelled_file_and_truth(pool):
    out, paths = pool
    web, truth = load_json(paths['web']), load_json(paths['truth'])
    assert paths['web'] == osp.join(out, 'annotations', 'web.json')
    # training reads images only
    assert web['annotations'] == []
    assert [c['name'] for c in web['categories']] == list(CLASSES)
    assert [i['id'] for i in web['images']] == list(range(1, 13))
    assert all(osp.isfile(osp.join(out, 'web', i['file_name'])) for i in web['images'])
    # the truth file says what each image shows
    relevant = {i['id']: i['relevant'] for i in truth['images']}
    assert sum(not r for r in relevant.values()) == 3  # exactly 25 % of 12
    assert all(relevant[a['image_id']] for a in truth['annotations'])
    for img in truth['images']:
        assert img['background'] in glyphs_web.BACKGROUNDS
        assert img['glyph_style'] in glyphs_web.GLYPH_STYLES
        assert set(img['post']) <= set(glyphs_web.POST_OPS)
        # an irrelevant image's objects are distractors, never class glyphs
        if not img['relevant']:
            assert all(o['char'] in DISTRACTORS for o in img['others'])
    for a in truth['annotations']:
        x, y, w, h = a['bbox']
        assert 0 <= x and 0 <= y and x + w <= 64 and y + h <= 64 and a['area'] == w * h
    settings = read_settings(out)
    assert settings['complete'] and settings['generator'] == 'mmkd_plugins.synthetic.glyphs_web'
    assert settings['outputs']['web']['images'] == 12
    assert settings['outputs']['web']['relevant'] == 9


def test_deterministic(tmp_path):
    a, b, c = (str(tmp_path / n) for n in 'abc')
    generate_glyphs_web(a, seed=5, **TINY)
    generate_glyphs_web(b, seed=5, **TINY)
    generate_glyphs_web(c, seed=6, **TINY)
    ta, tb, tc = file_tree(a), file_tree(b), file_tree(c)
    assert ta == tb
    assert ta['web/000000.png'] != tc['web/000000.png']


def test_images_differ_from_the_target_styles(pool):
    """The pool's backgrounds are none of the target's: the target's 'plain'
    style fills the whole image with one colour before the glyphs, the
    pool's 'mosaic' always has several flat regions."""
    out, paths = pool
    truth = load_json(paths['truth'])
    for img in truth['images']:
        arr = np.asarray(Image.open(osp.join(out, 'web', img['file_name'])))
        assert arr.shape == (64, 64, 3) and arr.dtype == np.uint8
        assert len(np.unique(arr.reshape(-1, 3), axis=0)) > 20, img


def test_outline_is_a_ring_and_bold_grows():
    g = np.random.default_rng(0)
    alpha = np.zeros((9, 9), np.float32)
    alpha[3:6, 3:6] = 1.0
    ring = glyphs_web._restyle(alpha, 'outline', np.random.default_rng(0))
    bold = glyphs_web._restyle(alpha, 'bold', np.random.default_rng(0))
    plain = glyphs_web._restyle(alpha, 'plain', g)
    assert bold.sum() > plain.sum()
    # the ring is what the dilation adds: nothing where the glyph was
    assert ring.shape == bold.shape and np.all(ring <= bold + 1e-6)
    assert ring[bold.shape[0] // 2, bold.shape[1] // 2] == 0 and ring.max() > 0.5


@pytest.mark.parametrize('kwargs, message', [
    (dict(images=0), 'images'),
    (dict(irrelevant_fraction=1.5), 'irrelevant_fraction'),
    (dict(post_prob=-0.1), 'post_prob'),
    (dict(height_range=(8, 100)), 'exceeds 64'),
    (dict(objects_per_image=(0, 2)), 'objects_per_image'),
])
def test_resolve_settings_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        resolve_settings(**kwargs)


def test_cli(tmp_path):
    out = str(tmp_path / 'w')
    cmd = [sys.executable, osp.join(ROOT, 'tools', 'make_demo_data.py'), '--dataset',
           'glyphs-web', '--out', out, '--pool', '4', '--irrelevant', '0.5', '--size', '48',
           '--scale-range', '8', '20']
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert 'wrote 4 images' in res.stdout
    assert read_settings(out)['settings']['irrelevant_fraction'] == 0.5
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and 'identical settings' in res.stdout
    res = subprocess.run(cmd + ['--val', '2'], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and '--val does not apply' in res.stderr
    # another pool size replaces this one only with --overwrite, truth file included
    res = subprocess.run(cmd[:-9] + ['--pool', '3', '--size', '48', '--scale-range', '8', '20',
                                     '--overwrite', '--quiet', '--irrelevant', '0.5'],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert sorted(os.listdir(osp.join(out, 'web'))) == ['000000.png', '000001.png',
                                                         '000002.png']
    assert len(load_json(osp.join(out, 'annotations', 'web_truth.json'))['images']) == 3
