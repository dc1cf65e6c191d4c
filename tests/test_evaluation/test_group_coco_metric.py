"""GroupCocoMetric on hand-made predictions: perfect for one group, wrong for
the other; per-group mAP, worst group, mean, and the errors."""
import json

import pytest
import torch

from mmdet.registry import METRICS

# Two groups of two 100x100 images, each image with two boxes (x, y, w, h).
BOXES = {1: [[10, 10, 30, 30], [50, 50, 40, 30]], 2: [[5, 60, 20, 30], [60, 5, 30, 40]],
         3: [[20, 20, 30, 40], [60, 60, 30, 30]], 4: [[10, 50, 40, 40], [55, 10, 35, 25]]}
GROUPS = {1: 'day', 2: 'day', 3: 'night', 4: 'night'}


def write_json(tmp_path, groups=GROUPS, key='group'):
    images = [dict(id=i, file_name=f'{i}.png', width=100, height=100) for i in BOXES]
    for img in images:
        if img['id'] in groups:
            img[key] = groups[img['id']]
    anns = [dict(id=10 * i + k, image_id=i, category_id=1 + k, bbox=b, area=b[2] * b[3],
                 iscrowd=0) for i, boxes in BOXES.items() for k, b in enumerate(boxes)]
    path = str(tmp_path / 'ann.json')
    with open(path, 'w') as f:
        json.dump(dict(images=images, annotations=anns,
                       categories=[dict(id=1, name='a'), dict(id=2, name='b')]), f)
    return path


def prediction(img_id, correct):
    boxes = torch.tensor(BOXES[img_id], dtype=torch.float32)
    boxes[:, 2:] += boxes[:, :2]  # xyxy
    # Wrong: the right boxes with each other's class.
    labels = torch.tensor([0, 1] if correct else [1, 0])
    return dict(img_id=img_id, ori_shape=(100, 100),
                pred_instances=dict(bboxes=boxes, scores=torch.tensor([0.9, 0.8]),
                                    labels=labels))


def build(ann_file, **kwargs):
    metric = METRICS.build(dict(type='GroupCocoMetric', ann_file=ann_file, **kwargs))
    metric.dataset_meta = dict(classes=('a', 'b'))
    return metric


@pytest.mark.parametrize('good,bad,worst_index', [('day', 'night', 1), ('night', 'day', 0)])
def test_per_group_map_and_worst_group(tmp_path, good, bad, worst_index):
    metric = build(write_json(tmp_path))
    metric.process({}, [prediction(i, GROUPS[i] == good) for i in (1, 2)])
    metric.process({}, [prediction(i, GROUPS[i] == good) for i in (3, 4)])
    out = metric.evaluate(size=4)
    assert out[f'group/{good}/bbox_mAP'] == 1.0
    assert out[f'group/{bad}/bbox_mAP'] == 0.0
    assert out['group/worst_bbox_mAP'] == 0.0
    assert out['group/mean_bbox_mAP'] == 0.5
    assert out['group/worst_group'] == worst_index  # index into sorted ['day', 'night']
    # The usual overall keys are still there; all images count.
    assert 0.3 < out['coco/bbox_mAP'] < 0.7
    assert f'group/{good}/bbox_mAP_50' in out
    assert not any(k.startswith('coco/group') for k in out)
    assert all(isinstance(v, (int, float)) for v in out.values())


def test_group_without_predictions_is_left_out(tmp_path):
    metric = build(write_json(tmp_path))
    metric.process({}, [prediction(1, True), prediction(2, True)])
    out = metric.evaluate(size=2)
    assert out['group/day/bbox_mAP'] == 1.0
    assert not any(k.startswith('group/night/') for k in out)
    assert out['group/worst_group'] == 0 and out['group/mean_bbox_mAP'] == 1.0


def test_group_key_is_configurable(tmp_path):
    metric = build(write_json(tmp_path, key='site'), group_key='site')
    assert metric.groups == ['day', 'night']


def test_errors(tmp_path):
    with pytest.raises(ValueError, match='GroupCocoMetric needs ann_file'):
        build(None)
    with pytest.raises(ValueError, match=r"group_key='group': no image in \S+ann.json has a "
                                         r"'group' field"):
        build(write_json(tmp_path, key='site'))
    with pytest.raises(ValueError, match=r"group_key='group': image id 3 in \S+ann.json has "
                                         r"no 'group' field \(1 of 4 images lack it\)"):
        build(write_json(tmp_path, groups={1: 'day', 2: 'day', 4: 'night'}))
