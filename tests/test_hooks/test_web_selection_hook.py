"""KD^3's selection: the maths on hand-computed numbers, then the hook on a
tiny web pool (rounds, sampler, log, checkpoint state)."""
import json
import math
import os.path as osp

import numpy as np
import pytest
import torch
from conftest import tiny_retinanet

from mmkd_plugins.hooks.web_selection_hook import (WebSelectionHook, alpha_schedule,
                                                   box_logits, class_thresholds,
                                                   select_images)


# -- a(e) ----------------------------------------------------------------------
@pytest.mark.parametrize('epoch, ramp, stop, expected', [
    # KD^3's own constants: 5 (1/160 - 1)^2 = 5 * 0.99375^2 = 4.937695;
    # exp(-4.937695) = exp(-5) exp(0.062305) = 0.0067379 * 1.064287 = 0.0071711
    (0, 160, 120, 0.992829),
    # (120/160 - 1)^2 * 5 = 0.3125: 1 - exp(-0.3125)
    (119, 160, 120, 0.268384),
    (120, 160, 120, 0.0),
    # the glyph config's E_a = 4, E_stop = 3: (e+1)/4 = 1/4, 1/2, 3/4, then 0
    (0, 4, 3, 0.939945),   # 1 - exp(-2.8125)
    (1, 4, 3, 0.713495),   # 1 - exp(-1.25)
    (2, 4, 3, 0.268384),
    (3, 4, 3, 0.0),
    # the curve itself reaches 0 at e + 1 = E_a
    (3, 4, 10, 0.0),
])
def test_alpha_schedule(epoch, ramp, stop, expected):
    assert alpha_schedule(epoch, ramp, stop) == pytest.approx(expected, abs=1e-6)


# -- tau_c ---------------------------------------------------------------------
def test_class_thresholds():
    # b = [1, 1/2, 1/4, 0]; tau = 0.95 b / (2 - b)
    tau = class_thresholds(torch.tensor([4, 2, 1, 0]), 0.95)
    assert tau.tolist() == pytest.approx([0.95, 0.95 * 0.5 / 1.5, 0.95 * 0.25 / 1.75, 0.0])
    assert tau[1].item() == pytest.approx(0.316667, abs=1e-6)
    assert tau[2].item() == pytest.approx(0.135714, abs=1e-6)
    # p_cutoff scales them all; no pseudo-label at all gives zeros, not NaN
    assert class_thresholds(torch.tensor([4, 2, 1, 0]), 0.5)[0].item() == pytest.approx(0.5)
    assert class_thresholds(torch.zeros(3, dtype=torch.long)).tolist() == [0, 0, 0]


# -- image logits from pseudo-boxes ---------------------------------------------
def test_box_logits():
    z = box_logits(torch.tensor([0.9, 0.6, 0.3]), torch.tensor([1, 1, 2]), 4, score_floor=0.05)
    # per class the best score (floor 0.05 for classes without a box), as a logit
    assert z.tolist() == pytest.approx([math.log(0.05 / 0.95), math.log(9.0),
                                        math.log(0.3 / 0.7), math.log(0.05 / 0.95)], abs=1e-5)
    # a box below the floor counts as the floor; no box at all: every class at the floor
    assert box_logits(torch.tensor([0.01]), torch.tensor([0]), 2).tolist() == \
        pytest.approx([math.log(0.05 / 0.95)] * 2, abs=1e-5)
    assert box_logits(torch.zeros(0), torch.zeros(0, dtype=torch.long), 2).shape == (2, )


# -- one round on hand-made predictions -----------------------------------------
TEACHER = torch.tensor([[2., 0, -2], [4, -1, -1], [0, 1, -3], [-1, -1, 0.5], [1, 0, 0]])
STUDENT = torch.tensor([[0., 0, -2], [2, -1, -1], [0, 3, -3], [-1, -1, -0.5], [-3, 1, 0]])


def test_select_images_combined():
    # z = (t + s) / 2 = [[1, 0, -2], [3, -1, -1], [0, 2, -3], [-1, -1, 0], [-1, .5, 0]]
    sel = select_images(TEACHER, STUDENT, alpha=0.5, p_cutoff=0.95)
    assert sel.labels.tolist() == [0, 0, 1, 2, 1]
    assert sel.counts.tolist() == [2, 2, 1]
    # b = [1, 1, 1/2]: tau = [0.95, 0.95, 0.95 * 0.5 / 1.5]
    assert sel.thresholds.tolist() == pytest.approx([0.95, 0.95, 0.316667], abs=1e-6)
    # sigmoid(1) = .731, sigmoid(3) = .953, sigmoid(2) = .881, sigmoid(0) = .5, sigmoid(.5) = .622
    assert sel.confidence.tolist() == pytest.approx([0.731059, 0.952574, 0.880797, 0.5,
                                                     0.622459], abs=1e-6)
    assert sel.keep.tolist() == [False, True, False, True, False]


def test_select_images_teacher_alone():
    # alpha = 1: z = teacher; labels [0, 0, 1, 2, 0], counts [3, 1, 1]
    sel = select_images(TEACHER, STUDENT, alpha=1.0)
    assert sel.labels.tolist() == [0, 0, 1, 2, 0]
    # b = [1, 1/3, 1/3]: tau = [0.95, 0.19, 0.19]
    assert sel.thresholds.tolist() == pytest.approx([0.95, 0.19, 0.19], abs=1e-6)
    # sigmoid(2) = .881 < .95; sigmoid(4) = .982; sigmoid(1) = .731 > .19;
    # sigmoid(.5) = .622 > .19; sigmoid(1) = .731 < .95
    assert sel.keep.tolist() == [False, True, True, True, False]
    # the student alone (alpha = 0) reads the student's logits only
    assert select_images(TEACHER, STUDENT, alpha=0.0).labels.tolist() == \
        select_images(STUDENT, TEACHER, alpha=1.0).labels.tolist()


# -- the hook on a tiny pool -----------------------------------------------------
@pytest.fixture(scope='module')
def web_root(tmp_path_factory):
    from mmkd_plugins.synthetic.glyphs_web import generate_glyphs_web
    root = str(tmp_path_factory.mktemp('web'))
    generate_glyphs_web(root, images=10, image_size=64, height_range=(10, 30), seed=0)
    return root


def web_runner_cfg(root, work_dir, max_iters=4, hook=None, checkpoint_interval=2, **extra):
    from conftest import runner_cfg
    from mmkd_plugins.synthetic.glyphs import dataset_meta
    model = dict(type='DetectionDistiller', student=tiny_retinanet(num_classes=20),
                 teacher=tiny_retinanet(width=16, fpn=32, num_classes=20), teacher_ckpt=None,
                 probe_size=(64, 64), detection_loss=False,
                 distill_losses=dict(loss_kd=dict(
                     student='bbox_head.retina_cls', teacher='bbox_head.retina_cls',
                     loss=dict(type='DenseKDLoss'))))
    cfg = runner_cfg(root, work_dir, model, max_iters=max_iters,
                     checkpoint_interval=checkpoint_interval, **extra)
    pipeline = [dict(type='LoadImageFromFile'),
                dict(type='Resize', scale=(64, 64), keep_ratio=True),
                dict(type='PackDetInputs')]
    cfg.train_dataloader = dict(
        batch_size=2, num_workers=0, sampler=dict(type='WebSelectionSampler', seed=0),
        dataset=dict(type='WebPoolDataset', data_root=root, metainfo=dataset_meta(),
                     ann_file='annotations/web.json', data_prefix=dict(img='web/'),
                     pipeline=pipeline))
    cfg.custom_hooks = [hook or dict(type='WebSelectionHook', interval=2, ramp_epochs=4,
                                     stop_epoch=3, pipeline=pipeline, batch_size=4)]
    return cfg


def _rounds(work_dir):
    with open(osp.join(work_dir, 'web_selection.jsonl')) as f:
        return [json.loads(line) for line in f]


def test_hook_selects_every_epoch_and_sampler_draws_kept_only(web_root, tmp_path, fast_runner,
                                                              monkeypatch):
    from mmengine.runner import Runner
    calls = []
    score = WebSelectionHook._score

    def counted(self, runner, distiller, who):
        calls.append(who)
        return score(self, runner, distiller, who)

    monkeypatch.setattr(WebSelectionHook, '_score', counted)
    runner = Runner.from_cfg(web_runner_cfg(web_root, str(tmp_path), max_iters=5))
    runner.train()
    sampler = runner.train_dataloader.sampler
    rounds = _rounds(str(tmp_path))
    # rounds at iterations 0, 2, 4 (interval 2), epochs 0, 1, 2
    assert [(r['epoch'], r['iter']) for r in rounds] == [(0, 0), (1, 2), (2, 4)]
    assert [r['alpha'] for r in rounds] == pytest.approx([0.939945, 0.713495, 0.268384],
                                                         abs=1e-6)
    # the teacher scored the pool once, the student every round
    assert calls == ['student', 'teacher', 'student', 'student']
    for r in rounds:
        assert r['pool'] == 10 and r['kept'] == len(r['kept_ids']) >= 1
        assert sum(r['pseudo_labelled']) == 10 and len(r['thresholds']) == 20
        assert sum(r['kept_per_class']) == r['kept'] or r['kept'] == 10
    # the sampler ends on the last round's selection (ids are index + 1 here)
    assert sorted(np.flatnonzero(sampler.keep) + 1) == rounds[-1]['kept_ids']


def test_an_epoch_is_one_pass_of_the_batches_under_a_batch_sampler(web_root, tmp_path,
                                                                   fast_runner):
    from mmengine.runner import Runner
    hook = dict(type='WebSelectionHook', ramp_epochs=4, stop_epoch=3, batch_size=4,
                pipeline=[dict(type='LoadImageFromFile'),
                          dict(type='Resize', scale=(64, 64), keep_ratio=True),
                          dict(type='PackDetInputs')])
    cfg = web_runner_cfg(web_root, str(tmp_path), max_iters=6, hook=hook)
    cfg.train_dataloader.batch_size = 4
    cfg.train_dataloader.batch_sampler = dict(type='AspectRatioBatchSampler')
    Runner.from_cfg(cfg).train()
    # 10 images in batches of 4: an epoch is 3 iterations, rounds at 0 and 3
    assert [(r['epoch'], r['iter']) for r in _rounds(str(tmp_path))] == [(0, 0), (1, 3)]


def test_sampler_draws_only_what_a_round_keeps(web_root, tmp_path, fast_runner, monkeypatch):
    from mmengine.runner import Runner
    from mmkd_plugins.hooks import web_selection_hook as wsh
    # a round that keeps images 1 and 4 only (by img_id), whatever the models say
    keep_ids = {1, 4}
    original = wsh.select_images

    def fixed(teacher, student, alpha, p_cutoff=0.95):
        sel = original(teacher, student, alpha, p_cutoff)
        keep = torch.tensor([i + 1 in keep_ids for i in range(len(sel.keep))])
        return sel._replace(keep=keep)

    monkeypatch.setattr(wsh, 'select_images', fixed)
    seen = []
    cfg = web_runner_cfg(web_root, str(tmp_path), max_iters=6)
    runner = Runner.from_cfg(cfg)
    model = runner.model
    loss = model.loss

    def spy(inputs, data_samples):
        seen.extend(s.img_id for s in data_samples)
        return loss(inputs, data_samples)

    model.loss = spy
    runner.train()
    assert set(seen) == keep_ids and len(seen) == 12


def test_checkpoint_holds_the_round_and_resume_restores_it(web_root, tmp_path, fast_runner,
                                                           monkeypatch):
    from mmengine.runner import Runner
    first = str(tmp_path / 'first')
    Runner.from_cfg(web_runner_cfg(web_root, first, max_iters=3, checkpoint_interval=3)).train()
    ckpt = torch.load(osp.join(first, 'iter_3.pth'), weights_only=False)
    state = ckpt['web_selection']
    rounds = _rounds(first)
    # saved after iteration 3, which is past the round at iteration 2 (epoch 1)
    assert int(state['epoch']) == 1 and sorted(state['kept'].tolist()) == rounds[-1]['kept_ids']
    assert state['teacher_logits'].shape == (10, 20)
    def no_scoring(self, runner, distiller, who):
        raise AssertionError(f'the {who} scored the pool on resume')

    monkeypatch.setattr(WebSelectionHook, '_score', no_scoring)
    second = str(tmp_path / 'second')
    cfg = web_runner_cfg(web_root, second, max_iters=4, checkpoint_interval=10,
                         resume=True, load_from=osp.join(first, 'iter_3.pth'))
    runner = Runner.from_cfg(cfg)
    runner.train()  # iteration 4 only; the round of epoch 1 comes from the checkpoint
    assert sorted(np.flatnonzero(runner.train_dataloader.sampler.keep) + 1) == \
        rounds[-1]['kept_ids']


def test_hook_needs_the_selection_sampler(web_root, tmp_path, fast_runner):
    from mmengine.runner import Runner
    cfg = web_runner_cfg(web_root, str(tmp_path))
    cfg.train_dataloader.sampler = dict(type='InfiniteSampler', seed=0)
    with pytest.raises(ValueError, match=r"train_dataloader.sampler must be "
                                         r"dict\(type='WebSelectionSampler'\)"):
        Runner.from_cfg(cfg).train()


@pytest.mark.parametrize('kwargs, message', [
    (dict(interval=0), 'interval'),
    (dict(ramp_epochs=0), 'ramp_epochs'),
    (dict(p_cutoff=1.5), 'p_cutoff'),
    (dict(score_floor=0.0), 'score_floor'),
])
def test_hook_argument_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WebSelectionHook(**kwargs)
