"""CrossViewDistiller: two-view pipeline, dense and RoI terms, errors."""
import copy
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.runner import Runner

from mmdet.registry import MODELS, TRANSFORMS
from mmkd_plugins.distillers import (DetectionDistiller, GroupDRO, TwoViews, project_rois,
                                     warp_dense)
from conftest import runner_cfg, tiny_faster_rcnn, tiny_retinanet

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PIPELINES = osp.join(REPO, 'configs/cross_view/_base_/two_view_pipelines.py')


def cv_cfg(student=None, teacher=None, losses=None, **cross_view):
    cross_view.setdefault('loss', dict(type='CrossViewLoss', tau_weak=0.5, tau_strong=0.2))
    return dict(type='CrossViewDistiller',
                student=student or tiny_retinanet(width=8, fpn=16),
                teacher=teacher or tiny_retinanet(width=16, fpn=32),
                teacher_ckpt=None, distill_losses=losses or {}, probe_size=(64, 64),
                cross_view=cross_view)


def digits_pipeline(size=64):
    cfg = Config.fromfile(PIPELINES)
    pipeline = copy.deepcopy(cfg.cv_digits_train_pipeline)
    pipeline[2]['scale'] = (size, size)
    from mmcv.transforms import Compose
    return Compose([TRANSFORMS.build(t) for t in pipeline])


def two_view_batch(model, digits_root, n=2, seed=0):
    """n images of the tiny digits through the shipped two-view pipeline,
    collated and preprocessed as the runner does."""
    return model.data_preprocessor(two_view_collated(digits_root, n, seed), True)


def two_view_collated(digits_root, n=2, seed=0):
    """The collated two-view batch, before the data preprocessor."""
    import json
    torch.manual_seed(seed)
    import random
    import numpy as np
    random.seed(seed)
    np.random.seed(seed)
    ann = json.load(open(osp.join(digits_root, 'annotations/train.json')))
    pipeline = digits_pipeline()
    items = []
    for img in ann['images'][:n]:
        boxes = [a for a in ann['annotations'] if a['image_id'] == img['id']]
        items.append(pipeline(dict(
            img_path=osp.join(digits_root, 'train', img['file_name']), img_id=img['id'],
            instances=[dict(bbox=[b['bbox'][0], b['bbox'][1], b['bbox'][0] + b['bbox'][2],
                                  b['bbox'][1] + b['bbox'][3]],
                            bbox_label=b['category_id'], ignore_flag=0) for b in boxes])))
    return pseudo_collate(items)


def test_preprocessor_is_mmdets_multi_branch_around_the_students(digits_root):
    """mmdet's MultiBranchDataPreprocessor replaced a hand-written per-view
    loop: same tensors and samples as the student's preprocessor run on each
    view alone, the student's instance shared, single views refused in
    training with the fix named, validation batches passed through."""
    from mmdet.models.data_preprocessors import MultiBranchDataPreprocessor
    model = MODELS.build(cv_cfg())
    pre = model.data_preprocessor
    assert isinstance(pre, MultiBranchDataPreprocessor)
    assert pre.data_preprocessor is model.student.data_preprocessor
    raw = two_view_collated(digits_root, n=3)
    out = pre(copy.deepcopy(raw), True)
    for view in ('weak', 'strong'):
        alone = model.student.data_preprocessor(
            {'inputs': raw['inputs'][view], 'data_samples': raw['data_samples'][view]}, True)
        assert torch.equal(out['inputs'][view], alone['inputs'])
        for a, b in zip(out['data_samples'][view], alone['data_samples']):
            assert a.batch_input_shape == b.batch_input_shape
            assert torch.equal(a.gt_instances.bboxes, b.gt_instances.bboxes)
    weak = {'inputs': raw['inputs']['weak'], 'data_samples': raw['data_samples']['weak']}
    with pytest.raises(ValueError, match="single-view training batch: end the train pipeline "
                                         "with dict\\(type='MultiBranch'"):
        pre(copy.deepcopy(weak), True)
    assert torch.equal(pre(copy.deepcopy(weak), False)['inputs'],
                       model.student.data_preprocessor(copy.deepcopy(weak), False)['inputs'])


def test_pipeline_views_share_boxes_and_size(digits_root):
    model = MODELS.build(cv_cfg())
    data = two_view_batch(model, digits_root, n=4)
    weak, strong = data['inputs']['weak'], data['inputs']['strong']
    assert weak.shape == strong.shape
    assert not torch.equal(weak, strong)  # the strong view is augmented
    for a, b in zip(data['data_samples']['weak'], data['data_samples']['strong']):
        assert a.img_shape == b.img_shape
        assert torch.equal(a.gt_instances.bboxes, b.gt_instances.bboxes)
        assert torch.equal(a.gt_instances.labels, b.gt_instances.labels)
        assert len(a.gt_instances) > 0
        assert 'homography_matrix' in a.metainfo


@pytest.mark.parametrize('detector', ['retinanet', 'faster_rcnn'])
def test_loss_mode_end_to_end(digits_root, detector):
    if detector == 'retinanet':
        cfg = cv_cfg()
    else:
        cfg = cv_cfg(tiny_faster_rcnn(width=8, fpn=16), tiny_faster_rcnn(width=16, fpn=32),
                     loss=dict(type='CrossViewLoss', temperature=4.0, tau_weak=0.0,
                               tau_strong=0.0))
    torch.manual_seed(0)
    model = MODELS.build(cfg)
    model.init_weights()
    model.train()
    data = two_view_batch(model, digits_root)
    losses = model(**data, mode='loss')
    assert {'loss_cv_within', 'loss_cv_cross'} <= set(losses)
    cv = losses['loss_cv_within'] + losses['loss_cv_cross']
    assert torch.isfinite(cv) and cv.item() > 0
    cv.backward()
    grads = [p.grad for p in model.student.parameters() if p.grad is not None]
    assert grads and sum(g.abs().sum() for g in grads) > 0
    assert all(p.grad is None for p in model.teacher.parameters())
    assert {'loss_cls', 'loss_bbox'} & set(losses)  # the student's own losses are there


def test_detection_loss_covers_both_views(digits_root):
    model = MODELS.build(cv_cfg())
    model.train()
    data = two_view_batch(model, digits_root)
    seen, student_loss = [], model.student.loss

    def spy(x, samples):
        seen.append((x.shape[0], len(samples)))
        return student_loss(x, samples)

    model.student.loss = spy
    model(**data, mode='loss')
    assert seen == [(4, 4)]  # 2 images x 2 views


def test_composes_with_fgd(digits_root):
    losses = {'loss_fgd': dict(student='neck', teacher='neck', loss=dict(type='FGDLoss'))}
    model = MODELS.build(cv_cfg(losses=losses))
    model.train()
    out = model(**two_view_batch(model, digits_root), mode='loss')
    assert {'loss_fgd', 'loss_cv_within', 'loss_cv_cross'} <= set(out)
    assert all(torch.isfinite(v).all() for k, v in out.items() if 'loss' in k
               and isinstance(v, torch.Tensor))


def test_identical_models_on_identical_views_give_zero(digits_root):
    cfg = cv_cfg(tiny_retinanet(width=8, fpn=16), tiny_retinanet(width=8, fpn=16),
                 loss=dict(type='CrossViewLoss', tau_weak=0.0, tau_strong=0.0))
    model = MODELS.build(cfg)
    model.teacher.load_state_dict(model.student.state_dict())
    model.eval()  # the same BN statistics in both
    data = two_view_batch(model, digits_root)
    data['inputs']['strong'] = data['inputs']['weak'].clone()
    out = model.loss(data['inputs'], data['data_samples'])
    assert out['loss_cv_within'].item() == pytest.approx(0.0, abs=1e-6)
    assert out['loss_cv_cross'].item() == pytest.approx(0.0, abs=1e-6)


def test_single_view_batch_is_refused(digits_root):
    model = MODELS.build(cv_cfg())
    data = two_view_batch(model, digits_root)
    with pytest.raises(ValueError, match='MultiBranch'):
        model.loss(data['inputs']['weak'], data['data_samples']['weak'])
    with pytest.raises(ValueError, match=r"missing \['strong'\]"):
        model.loss({'weak': data['inputs']['weak']}, {'weak': data['data_samples']['weak']})


def test_moved_boxes_are_refused_without_geometric(digits_root):
    model = MODELS.build(cv_cfg())
    data = two_view_batch(model, digits_root)
    data['data_samples']['strong'][1].gt_instances.bboxes[:, 0] += 5
    with pytest.raises(ValueError, match='image 1 .*geometric=True'):
        model.loss(data['inputs'], data['data_samples'])


def test_softmax_dense_head_is_refused():
    student = tiny_retinanet()
    student['bbox_head']['loss_cls'] = dict(type='CrossEntropyLoss', use_sigmoid=False)
    with pytest.raises(ValueError, match='softmax'):
        MODELS.build(cv_cfg(student=student))


def test_unreadable_head_is_refused():
    with pytest.raises(ValueError, match='cross_view.head must be'):
        MODELS.build(cv_cfg(head='retina_cls'))
    with pytest.raises(ValueError, match='unknown key'):
        MODELS.build(cv_cfg(heads='auto'))


@pytest.mark.parametrize('tau', [1.5, -0.5])
def test_threshold_outside_unit_interval(tau):
    with pytest.raises(ValueError, match='tau_weak'):
        MODELS.build(cv_cfg(loss=dict(type='CrossViewLoss', tau_weak=tau)))


def test_kind_must_match_head():
    with pytest.raises(ValueError, match='kind'):
        MODELS.build(cv_cfg(loss=dict(type='CrossViewLoss', kind='softmax')))


def test_different_classes_are_refused():
    with pytest.raises(ValueError, match='num_classes'):
        MODELS.build(cv_cfg(teacher=tiny_retinanet(width=16, fpn=32, num_classes=5)))


def test_warp_identity_and_shift():
    maps = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    eye = torch.eye(3).expand(2, 3, 3)
    warped, valid = warp_dense(maps, eye, (32, 32))
    assert torch.allclose(warped, maps, atol=1e-5) and valid.all()
    # Target pixel x reads source pixel x + 8 = one stride to the right.
    shift = torch.eye(3).repeat(2, 1, 1)
    shift[:, 0, 2] = 8.
    warped, valid = warp_dense(maps, shift, (32, 32))
    assert torch.allclose(warped[..., :3], maps[..., 1:], atol=1e-5)
    assert valid[..., :3].all() and not valid[..., 3].any()


def test_geometric_views_are_warped(digits_root):
    model = MODELS.build(cv_cfg(geometric=True))
    model.train()
    data = two_view_batch(model, digits_root)
    # A strong view translated 8 px to the right, boxes and homography moved with it.
    strong = data['inputs']['strong']
    data['inputs']['strong'] = torch.roll(strong, 8, dims=-1)
    for sample in data['data_samples']['strong']:
        sample.gt_instances.bboxes[:, 0::2] += 8
        h = sample.metainfo['homography_matrix'].copy()
        h[0, 2] += 8
        sample.set_metainfo(dict(homography_matrix=h))
    out = model.loss(data['inputs'], data['data_samples'])
    assert torch.isfinite(out['loss_cv_within']) and torch.isfinite(out['loss_cv_cross'])
    del data['data_samples']['strong'][0].homography_matrix
    with pytest.raises(ValueError, match='homography_matrix'):
        model.loss(data['inputs'], data['data_samples'])


def test_trains_through_the_runner(digits_root, tmp_path, fast_runner):
    pipeline = copy.deepcopy(Config.fromfile(PIPELINES).cv_digits_train_pipeline)
    pipeline[2]['scale'] = (64, 64)
    cfg = runner_cfg(digits_root, str(tmp_path), cv_cfg(), max_iters=2)
    cfg.train_dataloader.dataset.pipeline = pipeline
    runner = Runner.from_cfg(cfg)
    runner.train()
    ckpt = torch.load(osp.join(str(tmp_path), 'iter_2.pth'), weights_only=False)
    assert any(k.startswith('student.') for k in ckpt['state_dict'])
    assert not any(k.startswith('teacher.') for k in ckpt['state_dict'])


def test_group_dro_splits_both_views_by_group(digits_root):
    cfg = cv_cfg()
    cfg.update(type='GroupDROCrossViewDistiller', groups=['a', 'b'], step_size=0.1)
    model = MODELS.build(cfg)
    model.train()
    data = two_view_batch(model, digits_root, n=3)
    for view in ('weak', 'strong'):
        for sample, group in zip(data['data_samples'][view], ['a', 'b', 'a']):
            sample.set_metainfo(dict(group=group))
    # Composed, not inherited: the cross-view parts under the group-DRO objective.
    assert isinstance(model.views, TwoViews) and isinstance(model.objective, GroupDRO)
    calls, parent_step = [], DetectionDistiller.step

    def spy(self, batch, features=None):
        assert features is None  # two-view batches run the whole step per group
        n = batch.num_images
        calls.append({v: (batch.inputs[a:a + n].shape[0],
                          [s.group for s in batch.data_samples[a:a + n]])
                      for v, a in (('weak', 0), ('strong', n))})
        return parent_step(self, batch, features)

    DetectionDistiller.step = spy
    try:
        out = model(**data, mode='loss')
    finally:
        DetectionDistiller.step = parent_step
    assert calls == [{'weak': (2, ['a', 'a']), 'strong': (2, ['a', 'a'])},
                     {'weak': (1, ['b']), 'strong': (1, ['b'])}]
    assert {'loss_group_dro', 'gq_a', 'gq_b', 'part_cv_within', 'part_cv_cross'} <= set(out)
    assert out['gq_a'].item() != pytest.approx(0.5)  # the weights moved
    out['loss_group_dro'].backward()
    assert all(p.grad is None for p in model.teacher.parameters())


def test_geometric_rois_are_projected_into_the_other_view(digits_root):
    cfg = cv_cfg(tiny_faster_rcnn(width=8, fpn=16), tiny_faster_rcnn(width=16, fpn=32),
                 geometric=True, loss=dict(type='CrossViewLoss', temperature=4.0))
    model = MODELS.build(cfg)
    data = two_view_batch(model, digits_root)
    samples = data['data_samples']['weak'] + data['data_samples']['strong']
    for sample in samples[2:]:  # strong view: 8 px to the right of the weak one
        h = sample.metainfo['homography_matrix'].copy()
        h[0, 2] += 8
        sample.set_metainfo(dict(homography_matrix=h))
    rois = torch.tensor([[0, 10., 12., 30., 40.], [3, 20., 5., 44., 25.]])
    batch = model.views(data['inputs'], {'weak': samples[:2], 'strong': samples[2:]})
    moved = project_rois(rois, batch.homographies, batch.data_samples)
    # Weak image 0 -> strong: +8 in x; strong image 3 (= image 1) -> weak: -8.
    assert torch.allclose(moved, torch.tensor([[18., 12., 38., 40.], [12., 5., 36., 25.]]))
