"""The unlabelled web pool: MMDetection's CocoDataset of an images-only file,
with errors that name the key, and the sampler that draws kept images only."""
import itertools
import json
import os.path as osp

import numpy as np
import pytest
from mmengine.dataset import InfiniteSampler

from mmkd_plugins.datasets import WebPoolDataset, WebSelectionSampler
from mmkd_plugins.synthetic.glyphs import dataset_meta

PIPELINE = [dict(type='LoadImageFromFile'), dict(type='PackDetInputs')]


@pytest.fixture(scope='module')
def pool(tmp_path_factory):
    from mmkd_plugins.synthetic.glyphs_web import generate_glyphs_web
    root = str(tmp_path_factory.mktemp('web'))
    generate_glyphs_web(root, images=6, image_size=48, height_range=(8, 20), seed=0)
    return root


def build(root, ann_file='annotations/web.json', img='web/', **kwargs):
    return WebPoolDataset(data_root=root, ann_file=ann_file, data_prefix=dict(img=img),
                          metainfo=dataset_meta(), pipeline=PIPELINE, **kwargs)


def test_reads_images_without_ground_truth(pool):
    ds = build(pool, filter_cfg=dict(filter_empty_gt=True))  # no gt: nothing is filtered
    assert len(ds) == 6
    sample = ds[0]
    assert tuple(sample['inputs'].shape) == (3, 48, 48)
    assert len(sample['data_samples'].gt_instances) == 0
    assert sample['data_samples'].img_id == 1


def _empty(root):
    path = osp.join(root, 'annotations', 'empty.json')
    data = json.load(open(osp.join(root, 'annotations', 'web.json')))
    data['images'] = []
    json.dump(data, open(path, 'w'))
    build(root, ann_file='annotations/empty.json')


def test_min_size_filters_small_images(pool):
    assert len(build(pool, filter_cfg=dict(min_size=48))) == 6
    with pytest.raises(ValueError, match=r'train_dataloader.dataset.filter_cfg.min_size=49 '
                                         r'leaves none of the 6 images'):
        build(pool, filter_cfg=dict(min_size=49))


def test_labels_in_the_file_are_dropped(pool):
    truth = osp.join(pool, 'annotations', 'web_truth.json')
    assert json.load(open(truth))['annotations']  # a labelled file
    with pytest.warns(UserWarning, match=r'annotations; the web pool is read as images only'):
        ds = build(pool, ann_file='annotations/web_truth.json')
    assert all(len(ds[i]['data_samples'].gt_instances) == 0 for i in range(len(ds)))


@pytest.mark.parametrize('kwargs, message', [
    (dict(ann_file='annotations/nope.json'),
     r"train_dataloader.dataset.ann_file: the web pool's annotation file '.*nope.json' "
     r'does not exist'),
    (dict(img='nope/'),
     r"train_dataloader.dataset.data_prefix.img: the web pool's image folder '.*nope/' "
     r'does not exist'),
])
def test_missing_paths_name_the_key(pool, kwargs, message):
    with pytest.raises(FileNotFoundError, match=message):
        build(pool, **kwargs)


def test_empty_pool_names_the_key(pool):
    with pytest.raises(ValueError, match=r"train_dataloader.dataset.ann_file: the web pool "
                                         r"'.*empty.json' holds no images"):
        _empty(pool)


def test_sampler_is_infinite_sampler_until_a_selection(pool):
    ds = build(pool)
    ours, theirs = WebSelectionSampler(ds, seed=3), InfiniteSampler(ds, seed=3)
    first = list(itertools.islice(iter(ours), 20))
    assert first == list(itertools.islice(iter(theirs), 20))
    assert sorted(first[:6]) == list(range(6))


def test_sampler_draws_kept_images_only_from_the_moment_it_is_told(pool):
    ds = build(pool)
    sampler = WebSelectionSampler(ds, seed=3)
    stream = iter(sampler)
    before = [next(stream) for _ in range(4)]
    sampler.set_keep(np.array([False, True, False, True, False, False]))
    after = [next(stream) for _ in range(10)]
    assert len(before) == 4 and set(after) == {1, 3}
    # the same order as InfiniteSampler's stream, with the rejected left out
    reference = [i for i in itertools.islice(iter(InfiniteSampler(ds, seed=3)), 60)][4:]
    assert after == [i for i in reference if i in (1, 3)][:10]
    sampler.set_keep(None)
    assert set(next(stream) for _ in range(30)) == set(range(6))


def test_set_keep_errors(pool):
    sampler = WebSelectionSampler(build(pool))
    with pytest.raises(ValueError, match=r'keep has shape \(3,\), the pool 6 images'):
        sampler.set_keep(np.ones(3, bool))
    with pytest.raises(ValueError, match='keep rejects every image of the pool'):
        sampler.set_keep(np.zeros(6, bool))
