"""Tests of the deterministic handwritten-digits detection dataset."""
import importlib.util
import json
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
from mmkd_plugins.synthetic import digits as demo_digits  # noqa: E402
from mmkd_plugins.synthetic.digits import (CLASSES, STYLES, dataset_meta,  # noqa: E402
                                           generate_digits_detection, read_image_groups,
                                           read_settings, resolve_settings)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(ROOT, 'tools', 'make_demo_data.py')
TINY = dict(splits=(('train', 12), ('val', 6)), image_size=64, scale_range=(12, 32))


def _tool():
    spec = importlib.util.spec_from_file_location('make_demo_data', TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope='module')
def tiny(tmp_path_factory):
    out = str(tmp_path_factory.mktemp('digits'))
    return out, generate_digits_detection(out, seed=3, **TINY)


def test_dataset_meta():
    meta = dataset_meta()
    assert meta['classes'] == tuple(str(i) for i in range(10)) == CLASSES
    assert len(meta['palette']) == 10 and len(set(meta['palette'])) == 10
    assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in meta['palette'])


def test_deterministic(tmp_path):
    a, b, c = (str(tmp_path / n) for n in 'abc')
    generate_digits_detection(a, seed=5, **TINY)
    generate_digits_detection(b, seed=5, **TINY)
    generate_digits_detection(c, seed=6, **TINY)
    ta, tb, tc = file_tree(a), file_tree(b), file_tree(c)
    assert len(ta) == 12 + 6 + 2 + 1  # pngs, two jsons, settings.json
    assert ta == tb
    assert set(ta) == set(tc)
    assert ta['annotations/train.json'] != tc['annotations/train.json']
    assert sum(ta[k] != tc[k] for k in ta if k.endswith('.png')) >= 17


def test_coco_json_valid(tiny):
    out, paths = tiny
    assert set(paths) == {'train', 'val'}
    for split, count in TINY['splits']:
        assert paths[split] == osp.join(out, 'annotations', f'{split}.json')
        coco = load_json(paths[split])
        assert [c['id'] for c in coco['categories']] == list(range(1, 11))
        assert [c['name'] for c in coco['categories']] == list(CLASSES)
        images = {img['id']: img for img in coco['images']}
        assert len(images) == len(coco['images']) == count
        for img in coco['images']:
            assert img['style'] in STYLES and img['group'] == img['style']
            assert img['width'] == img['height'] == 64
            pil = Image.open(osp.join(out, split, img['file_name']))
            assert pil.mode == 'RGB' and pil.size == (64, 64)
        ann_ids = [a['id'] for a in coco['annotations']]
        assert len(set(ann_ids)) == len(ann_ids) >= count
        per_image = {}
        for a in coco['annotations']:
            assert a['image_id'] in images
            assert 1 <= a['category_id'] <= 10 and a['iscrowd'] == 0
            x, y, w, h = a['bbox']
            assert all(isinstance(v, int) for v in a['bbox'])
            assert w > 0 and h > 0 and a['area'] == w * h
            assert x >= 0 and y >= 0 and x + w <= 64 and y + h <= 64
            assert 4 <= max(w, h) <= 32
            per_image.setdefault(a['image_id'], []).append([x, y, x + w, y + h])
        # every image got at least its first digit; boxes hardly overlap
        assert set(per_image) == set(images)
        for boxes in per_image.values():
            assert len(boxes) <= 4
            for i in range(len(boxes)):
                for j in range(i):
                    assert _iou(boxes[i], boxes[j]) < 0.1


def _iou(a, b):
    iw = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_boxes_tight_on_plain(tmp_path):
    from sklearn.datasets import load_digits
    labels = load_digits().target
    paths = generate_digits_detection(str(tmp_path), splits=(('train', 16),), image_size=64,
                                      scale_range=(12, 40), styles=('plain',), seed=1)
    coco = load_json(paths['train'])
    by_image = {}
    for a in coco['annotations']:
        by_image.setdefault(a['image_id'], []).append(a)
        assert labels[a['source_index']] == a['category_id'] - 1
    for img in coco['images']:
        assert img['style'] == 'plain'
        arr = np.asarray(Image.open(tmp_path / 'train' / img['file_name']))
        colours, counts = np.unique(arr.reshape(-1, 3), axis=0, return_counts=True)
        bg = colours[np.argmax(counts)]
        differs = (arr != bg).any(axis=2)
        covered = np.zeros_like(differs)
        for a in by_image[img['id']]:
            x, y, w, h = a['bbox']
            crop = differs[y:y + h, x:x + w]
            # tight: the glyph touches all four sides of its box
            assert crop[0].any() and crop[-1].any() and crop[:, 0].any() and crop[:, -1].any()
            assert crop.mean() > 0.15  # pixels inside the box differ from the background
            covered[y:y + h, x:x + w] = True
        # and nothing outside the boxes differs from the background
        assert not (differs & ~covered).any()


def test_digit_pools_disjoint(tmp_path, tiny):
    out, paths = tiny
    used = {s: {a['source_index'] for a in load_json(p)['annotations']} for s, p in paths.items()}
    assert used['train'] and used['val'] and not used['train'] & used['val']
    settings = read_settings(out)
    assert settings['complete'] and settings['settings']['pool_seed'] == 3
    outputs = settings['outputs']
    assert outputs['train']['pool_size'] + outputs['val']['pool_size'] == 1797
    # the pools partition all digits, stratified by class, proportionally
    from sklearn.datasets import load_digits
    labels = load_digits().target
    fractions = settings['settings']['pool_fractions']
    assert fractions == dict(train=12 / 18, val=6 / 18)
    pools = demo_digits._make_pools(3, fractions)
    assert not set(pools['train']) & set(pools['val'])
    assert len(pools['train']) + len(pools['val']) == 1797
    assert used['train'] <= set(pools['train']) and used['val'] <= set(pools['val'])
    for c in range(10):
        n_train, n_val = (int((labels[pools[s]] == c).sum()) for s in ('train', 'val'))
        assert abs(n_train - 2 / 3 * (n_train + n_val)) <= 1
    # a train-only set with the same pool seed and fractions reuses the train pool
    paths = generate_digits_detection(str(tmp_path), splits=(('train', 30),), image_size=32,
                                      scale_range=(8, 16), seed=9, pool_seed=3,
                                      pool_fractions=dict(val=6 / 18, train=12 / 18))
    used_again = {a['source_index'] for a in load_json(paths['train'])['annotations']}
    assert used_again <= set(pools['train'])
    assert read_settings(str(tmp_path))['outputs']['train']['pool_size'] == len(pools['train'])


def test_style_probs_respected(tmp_path):
    probs = dict(photo=0.05, plain=0.35, gradient=0.3, texture=0.3)
    paths = generate_digits_detection(
        str(tmp_path), splits=(('train', 400), ('val', 40)), image_size=32,
        digits_per_image=(1, 1), scale_range=(8, 16), seed=0,
        style_probs=dict(train=probs))
    train = Counter(img['style'] for img in load_json(paths['train'])['images'])
    for style, p in probs.items():
        assert abs(train[style] - 400 * p) <= 1
    val = Counter(img['style'] for img in load_json(paths['val'])['images'])
    assert all(val[s] == 10 for s in STYLES)  # splits not named are uniform
    groups = read_image_groups(paths['train'])
    assert Counter(groups.values()) == train
    # the styles really look different: plain backgrounds are flat, photos are not
    flat = {}
    for img in load_json(paths['train'])['images'][:80]:
        arr = np.asarray(Image.open(tmp_path / 'train' / img['file_name'])).reshape(-1, 3)
        top = Counter(map(tuple, arr)).most_common(1)[0][1] / len(arr)
        flat.setdefault(img['style'], []).append(top)
    assert min(flat['plain']) > 0.5 and max(flat['photo']) < 0.2


def test_group_map(tmp_path):
    paths = generate_digits_detection(str(tmp_path), splits=(('train', 8),), image_size=32,
                                      scale_range=(8, 16), group_map=dict(photo='real'))
    for img in load_json(paths['train'])['images']:
        assert img['group'] == ('real' if img['style'] == 'photo' else img['style'])


@pytest.mark.parametrize('kwargs, message', [
    (dict(splits=(('train', -3),)), 'positive integer count'),
    (dict(styles=('plain', 'neon')), 'unknown style'),
    (dict(style_probs=dict(plain=0.5, photo=0.4)), 'sum to 1'),
    (dict(style_probs=dict(neon=1.0)), 'unknown style or split'),
    (dict(style_probs=dict(test=dict(plain=1.0))), 'unknown style or split'),
    (dict(style_probs=dict(train=dict(neon=1.0))), 'unknown style'),
    (dict(scale_range=(16, 200)), 'exceeds 128'),
    (dict(digits_per_image=(3, 2)), 'low <= high'),
    (dict(seed=-1), 'seed'),
])
def test_resolve_settings_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        resolve_settings(**kwargs)


def test_resolve_settings_normalises():
    a = resolve_settings(style_probs=dict(photo=0.25, plain=0.25, gradient=0.25, texture=0.25))
    b = resolve_settings(splits=dict(train=800, val=200), style_probs=None)
    assert a == b == json.loads(json.dumps(a))


ARGS = ['--train', '6', '--val', '3', '--size', '48', '--scale-range', '8', '24', '--quiet']


def test_cli_refuses_other_settings(tmp_path, capsys):
    tool = _tool()
    out = str(tmp_path / 'digits')
    assert tool.main(['--out', out] + ARGS) == 0
    before = file_tree(out)
    assert len(before) == 6 + 3 + 2 + 1
    capsys.readouterr()
    # identical settings: says so, leaves everything as it is
    assert tool.main(['--out', out] + ARGS) == 0
    assert 'identical settings' in capsys.readouterr().out
    assert file_tree(out) == before
    # other settings: refuses, touches nothing
    with pytest.raises(SystemExit) as e:
        tool.main(['--out', out, '--seed', '1'] + ARGS)
    assert e.value.code == 1
    err = capsys.readouterr().err
    assert 'refusing' in err and 'seed' in err and '--overwrite' in err
    assert file_tree(out) == before
    # --overwrite replaces it, removing the files the old settings made
    assert tool.main(['--out', out, '--seed', '1', '--train', '4', '--overwrite'] + ARGS[2:]) == 0
    after = file_tree(out)
    assert len(after) == 4 + 3 + 2 + 1 and 'train/000005.png' not in after
    assert after['annotations/val.json'] != before['annotations/val.json']
    assert read_settings(out)['settings']['seed'] == 1


def test_cli_refuses_foreign_folder(tmp_path, capsys):
    tool = _tool()
    (tmp_path / 'notes.txt').write_text('mine')
    with pytest.raises(SystemExit) as e:
        tool.main(['--out', str(tmp_path)] + ARGS)
    assert e.value.code == 1 and 'not empty' in capsys.readouterr().err
    assert os.listdir(tmp_path) == ['notes.txt']


@pytest.mark.parametrize('argv, message', [
    (['--train', '-5'], 'must be >= 0'),
    (['--size', 'big'], 'expected an integer'),
    (['--style-probs', 'photo=0.5,plain=0.4'], 'sum to 1'),
    (['--style-probs', 'photo=0.5,neon=0.5'], 'unknown style'),
    (['--style-probs', 'photo:0.5'], 'expected style=probability'),
    (['--style-probs', 'test:plain=1'], 'not generated'),
    (['--styles', 'plain,neon'], 'unknown style'),
    (['--train', '0', '--val', '0'], 'nothing to generate'),
    (['--scale-range', '8', '200'], 'exceeds 48'),
])
def test_cli_bad_arguments(tmp_path, capsys, argv, message):
    tool = _tool()
    with pytest.raises(SystemExit) as e:
        tool.main(['--out', str(tmp_path / 'x')] + ARGS + argv)
    assert e.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / 'x').exists()


def test_cli_script_per_split_probs(tmp_path):
    out = str(tmp_path / 'd')
    cmd = [sys.executable, TOOL, '--out', out, '--train', '20', '--val', '4', '--size', '32',
           '--scale-range', '8', '16',
           '--style-probs', 'plain=0.5,photo=0.5', '--style-probs', 'val:texture=1']
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert 'wrote 24 images' in res.stdout
    train = Counter(read_image_groups(osp.join(out, 'annotations', 'train.json')).values())
    val = Counter(read_image_groups(osp.join(out, 'annotations', 'val.json')).values())
    assert train == {'plain': 10, 'photo': 10}
    assert val == {'texture': 4}


def test_loads_with_mmdet_coco_dataset(tiny):
    pytest.importorskip('mmdet')
    from mmdet.datasets import CocoDataset
    from mmdet.utils import register_all_modules
    register_all_modules()
    out, paths = tiny
    coco = load_json(paths['train'])
    ds = CocoDataset(
        data_root=out, ann_file='annotations/train.json', data_prefix=dict(img='train/'),
        metainfo=dataset_meta(),
        pipeline=[dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True)])
    assert len(ds) == len(coco['images'])
    assert ds.metainfo['classes'] == CLASSES
    for idx in (0, len(ds) - 1):
        sample = ds[idx]
        img_id = sample['img_id']
        anns = [a for a in coco['annotations'] if a['image_id'] == img_id]
        assert sample['img'].shape == (64, 64, 3)
        assert len(sample['gt_bboxes']) == len(anns) > 0
        assert sample['gt_bboxes_labels'].tolist() == [a['category_id'] - 1 for a in anns]
        expect = [[x, y, x + w, y + h] for x, y, w, h in (a['bbox'] for a in anns)]
        assert np.allclose(sample['gt_bboxes'].tensor.numpy(), expect)
