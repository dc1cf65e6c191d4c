"""GroupCocoDataset: the group of every image reaches the data samples;
missing or malformed groups fail at load time with the key and image named."""
import json
import os.path as osp

import pytest

from mmdet.registry import DATASETS
from mmkd_plugins.synthetic.digits import dataset_meta, read_image_groups

META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'group')
PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
            dict(type='PackDetInputs', meta_keys=META_KEYS)]


def build(root, ann_file='annotations/train.json', **kwargs):
    return DATASETS.build(dict(
        type='GroupCocoDataset', data_root=root, ann_file=ann_file, metainfo=dataset_meta(),
        data_prefix=dict(img='train/'), pipeline=PIPELINE, **kwargs))


def edited_json(digits_root, tmp_path, edit):
    with open(osp.join(digits_root, 'annotations', 'train.json')) as f:
        data = json.load(f)
    edit(data['images'])
    path = str(tmp_path / 'train.json')
    with open(path, 'w') as f:
        json.dump(data, f)
    return path


def test_groups_reach_data_infos_metainfo_and_samples(digits_root):
    dataset = build(digits_root)
    expected = read_image_groups(osp.join(digits_root, 'annotations', 'train.json'))
    assert len(dataset) == len(expected) == 16
    assert {dataset.get_data_info(i)['img_id']: dataset.get_data_info(i)['group']
            for i in range(len(dataset))} == expected
    assert dataset.metainfo['groups'] == sorted(set(expected.values()))
    assert len(dataset.metainfo['groups']) > 1
    for i in (0, 5):
        sample = dataset[i]['data_samples']
        assert sample.metainfo['group'] == expected[sample.metainfo['img_id']]


def test_group_key_names_the_json_field(digits_root, tmp_path):
    # Group by a numeric field: the value is stored under 'group', as a string.
    path = edited_json(digits_root, tmp_path,
                       lambda images: [img.update(site=img['id'] % 3) for img in images])
    dataset = build(digits_root, ann_file=path, group_key='site')
    assert dataset.metainfo['groups'] == ['0', '1', '2']
    info = dataset.get_data_info(0)
    assert info['group'] == str(info['img_id'] % 3) and 'site' not in info
    assert dataset[0]['data_samples'].metainfo['group'] == info['group']


def test_key_absent_from_all_images(digits_root):
    with pytest.raises(ValueError, match=r"group_key='site': no image in \S+train.json has "
                                         r"a 'site' field \(e.g. image id 1\)"):
        build(digits_root, group_key='site')


def test_image_without_group(digits_root, tmp_path):
    path = edited_json(digits_root, tmp_path, lambda images: images[6].pop('group'))
    with pytest.raises(ValueError, match=r"group_key='group': image id 7 \('000006.png'\) "
                                         r"in \S+ has no 'group' field \(1 of 16 images"):
        build(digits_root, ann_file=path)


@pytest.mark.parametrize('value', [None, ['a'], True])
def test_group_that_is_not_a_name(digits_root, tmp_path, value):
    path = edited_json(digits_root, tmp_path, lambda images: images[2].update(group=value))
    with pytest.raises(ValueError, match=r"image id 3 \('000002.png'\) has group="
                                         + f'{value!r}'.replace('[', r'\[').replace(']', r'\]')):
        build(digits_root, ann_file=path)
