"""TeacherEvalHook: the teacher is evaluated once, before training."""
import json
import os.path as osp
import types

import pytest
import torch
from conftest import distiller_cfg, runner_cfg, tiny_retinanet
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmdet.structures.bbox import get_box_tensor
from mmkd_plugins.hooks import TeacherEvalHook


def test_teacher_metrics_logged_then_student_predicts(tmp_path, digits_root, fast_runner):
    cfg = runner_cfg(digits_root, str(tmp_path), distiller_cfg(), max_iters=1,
                     checkpoint_interval=1, val=True, experiment_name='teacher_eval_e2e',
                     custom_hooks=[dict(type='TeacherEvalHook')])
    runner = Runner.from_cfg(cfg)
    distiller = runner.model

    # The teacher is an oracle (it predicts the ground truth) so that its
    # metrics are unmistakably the teacher's: mAP 1.0, the student's ~0.
    teacher_calls = []

    def oracle(inputs, data_samples, rescale=True):
        assert distiller._predict_with_teacher and not distiller.training
        for sample in data_samples:
            gt = sample.gt_instances
            sample.pred_instances = InstanceData(
                bboxes=get_box_tensor(gt.bboxes).clone(), labels=gt.labels.clone(),
                scores=torch.ones(len(gt.labels)))
        teacher_calls.append(len(data_samples))
        return data_samples

    distiller.teacher.predict = oracle
    student_calls = []
    student_predict = distiller.student.predict

    def spy(*args, **kwargs):
        student_calls.append(distiller._predict_with_teacher)
        return student_predict(*args, **kwargs)

    distiller.student.predict = spy
    train_log = []

    class Probe(Hook):
        def before_train_iter(self, runner, batch_idx, data_batch=None):
            train_log.append((runner.iter, list(teacher_calls), list(student_calls),
                              distiller._predict_with_teacher, distiller.training))

    runner.register_hook(Probe())
    runner.train()

    # Before the first iteration the teacher predicted the whole val split
    # once, in eval mode; then the model is back in training mode.
    assert train_log == [(0, [2, 2, 2, 2], [], False, True)]
    # The validation at the end of training (iteration == max_iters) ran on
    # the student's predictions.
    assert sum(teacher_calls) == 8
    assert len(student_calls) == 4 and not any(student_calls)
    assert not distiller._predict_with_teacher

    with open(osp.join(runner.log_dir, 'teacher_metrics.json')) as f:
        metrics = json.load(f)
    assert metrics['teacher/coco/bbox_mAP'] == pytest.approx(1.0)
    assert metrics['teacher/coco/bbox_mAP_50'] == pytest.approx(1.0)
    assert all(k.startswith('teacher/coco/') for k in metrics)
    assert runner.message_hub.get_scalar('teacher/coco/bbox_mAP').current() == pytest.approx(1.0)
    with open(osp.join(runner.log_dir, 'vis_data', 'scalars.json')) as f:
        logged = [json.loads(line) for line in f]
    assert any(r.get('teacher/coco/bbox_mAP') == pytest.approx(1.0) for r in logged)

    # Validation after the hook still uses the student, whose (random)
    # predictions are nowhere near the oracle's mAP of 1 (CocoMetric reports
    # nothing at all when no box passes score_thr).
    assert runner.val().get('coco/bbox_mAP', 0.0) < 0.5
    assert sum(teacher_calls) == 8 and len(student_calls) == 8 and not any(student_calls)


def fake_runner(model, it=0, val_loop=None):
    return types.SimpleNamespace(model=model, iter=it, val_loop=val_loop)


@pytest.fixture(scope='module')
def distiller():
    return MODELS.build(distiller_cfg())


def test_needs_validation_config(distiller):
    with pytest.raises(ValueError, match='TeacherEvalHook needs val_dataloader, val_cfg and '
                                         'val_evaluator'):
        TeacherEvalHook().before_train(fake_runner(distiller))


def test_skipped_on_resume(distiller):
    # No val loop at all: a resumed run does not even look for it.
    TeacherEvalHook().before_train(fake_runner(distiller, it=3))
    with pytest.raises(ValueError, match='TeacherEvalHook needs val_dataloader'):
        TeacherEvalHook(skip_on_resume=False).before_train(fake_runner(distiller, it=3))


def test_needs_a_distiller():
    with pytest.raises(TypeError, match=r'TeacherEvalHook needs model.type="DetectionDistiller"'):
        TeacherEvalHook().before_train(fake_runner(MODELS.build(tiny_retinanet())))
