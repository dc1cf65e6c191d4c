"""The teacher's detections standing in for the ground truth of unlabelled
images (FGD's masks on a web pool)."""
import pytest
import torch
from conftest import distiller_cfg, fgd_spec, make_batch

from mmdet.registry import MODELS


def build(score_thr):
    torch.manual_seed(0)
    model = MODELS.build(distiller_cfg(
        losses={'loss_fgd': fgd_spec()}, detection_loss=False,
        objective=dict(type='TeacherPseudoBoxes', score_thr=score_thr)))
    with torch.no_grad():  # a teacher that detects something at random init
        model.teacher.bbox_head.retina_cls.bias.normal_(0, 1)
    return model.train()


def test_teacher_boxes_replace_the_ground_truth():
    model = build(score_thr=0.5)
    data = make_batch(model)
    with torch.no_grad():
        reference = model.teacher.predict(data['inputs'], [s.clone() for s in data['data_samples']],
                                          rescale=False)
    losses = model(**data, mode='loss')
    assert list(losses) == ['loss_fgd'] and torch.isfinite(losses['loss_fgd'])
    assert not model.teacher.training
    for sample, ref in zip(data['data_samples'], reference):
        keep = ref.pred_instances.scores >= 0.5
        assert keep.any()  # a real comparison
        torch.testing.assert_close(sample.gt_instances.bboxes, ref.pred_instances.bboxes[keep])
        assert torch.equal(sample.gt_instances.labels, ref.pred_instances.labels[keep])


def test_nothing_above_the_threshold_leaves_no_boxes():
    model = build(score_thr=1.0)
    data = make_batch(model)
    losses = model(**data, mode='loss')
    assert torch.isfinite(losses['loss_fgd'])
    assert all(len(s.gt_instances) == 0 for s in data['data_samples'])


def test_score_thr_checked():
    with pytest.raises(ValueError, match=r'objective.score_thr must be in \[0, 1\]'):
        build(score_thr=1.5)
