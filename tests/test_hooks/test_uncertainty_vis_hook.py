"""UncertaintyVisHook: heat maps of the teacher's MC-dropout uncertainty."""
import glob
import os.path as osp
import types

import cv2
import numpy as np
import pytest
import torch
from conftest import distiller_cfg, make_batch, runner_cfg
from mmengine.runner import Runner

from mmdet.registry import MODELS
from mmkd_plugins.hooks import UncertaintyVisHook

UET = dict(student='neck', teacher='neck', mc_dropout=dict(p=0.2, passes=4),
           loss=dict(type='UncertaintyAwareLoss', host=dict(type='FGDLoss')))


def test_writes_heat_maps_with_a_local_vis_backend(tmp_path, digits_root, fast_runner):
    cfg = runner_cfg(digits_root, str(tmp_path), distiller_cfg(losses={'loss_uet': UET}),
                     max_iters=2, checkpoint_interval=2, experiment_name='uet_vis',
                     custom_hooks=[dict(type='UncertaintyVisHook', interval=2, max_images=2)])
    runner = Runner.from_cfg(cfg)
    runner.train()
    files = sorted(glob.glob(osp.join(runner.log_dir, 'vis_data', 'vis_image', '*.png')))
    # Iteration 2 only (interval 2), two of the batch's two images.
    assert [osp.basename(f) for f in files] == [
        'uncertainty_loss_uet_level0_img0_2.png', 'uncertainty_loss_uet_level0_img1_2.png']
    image = cv2.imread(files[0])
    assert image.shape == (64, 64, 3) and image.std() > 0


class FakeVisualizer:

    def __init__(self):
        self.images = []

    def add_image(self, name, image, step=0):
        self.images.append((name, image, step))


def fake_runner(model, it):
    return types.SimpleNamespace(model=model, iter=it, visualizer=FakeVisualizer())


def test_every_interval_without_touching_the_training_rng():
    torch.manual_seed(0)
    model = MODELS.build(distiller_cfg(losses={'loss_fgd': dict(loss=dict(type='FGDLoss')),
                                               'loss_uet': UET}))
    packed = make_batch(model, batch_size=3)
    raw = [torch.randint(0, 256, (3, 60, 57), dtype=torch.uint8) for _ in range(3)]
    data_batch = dict(inputs=raw, data_samples=packed['data_samples'])
    hook = UncertaintyVisHook(interval=3, max_images=2, level=1)
    runner = fake_runner(model, 0)
    hook.before_train(runner)
    for it in range(6):
        runner.iter = it
        state = torch.get_rng_state()
        hook.after_train_iter(runner, it, data_batch)
        assert torch.equal(torch.get_rng_state(), state)
    names = [(name, step) for name, _, step in runner.visualizer.images]
    assert names == [(f'uncertainty_loss_uet_level1_img{i}', step)
                     for step in (3, 6) for i in range(2)]
    image = runner.visualizer.images[0][1]
    assert image.shape == (60, 57, 3) and image.dtype == np.uint8


def test_blend_is_rgb_over_the_bgr_input():
    raw = torch.zeros(3, 2, 2, dtype=torch.uint8)
    raw[0] = 200  # blue in the loader's BGR order
    plain = UncertaintyVisHook(alpha=0.0).blend(raw, np.zeros((2, 2)))
    assert (plain[..., 2] == 200).all() and (plain[..., :2] == 0).all()
    hot = UncertaintyVisHook(alpha=1.0).blend(raw, np.ones((2, 2)))
    assert (hot[..., 0] > 100).all() and (hot[..., 2] < 50).all()  # red: uncertain


def test_error_without_an_mc_dropout_spec():
    model = MODELS.build(distiller_cfg())
    with pytest.raises(ValueError, match='UncertaintyVisHook needs a distill_losses entry '
                       r"with mc_dropout; the model has none"):
        UncertaintyVisHook().before_train(fake_runner(model, 0))
    model = MODELS.build(distiller_cfg(losses={'loss_uet': UET}))
    with pytest.raises(ValueError, match="with mc_dropout named 'loss_x'; the model has "
                       r"\['loss_uet'\]"):
        UncertaintyVisHook(loss_name='loss_x').before_train(fake_runner(model, 0))
    with pytest.raises(TypeError, match='UncertaintyVisHook needs model.type="DetectionDistiller"'):
        UncertaintyVisHook().before_train(fake_runner(model.student, 0))


def test_error_level_out_of_range():
    model = MODELS.build(distiller_cfg(losses={'loss_uet': UET}))
    packed = make_batch(model)
    data_batch = dict(inputs=[torch.zeros(3, 64, 64, dtype=torch.uint8)] * 2,
                      data_samples=packed['data_samples'])
    with pytest.raises(ValueError, match="UncertaintyVisHook: level=3 but 'loss_uet' distils 3"):
        UncertaintyVisHook(interval=1, level=3).after_train_iter(
            fake_runner(model, 0), 0, data_batch)


@pytest.mark.parametrize('kwargs,match', [
    (dict(interval=0), 'interval must be >= 1'),
    (dict(max_images=0), 'max_images must be >= 1'),
    (dict(level=-1), 'level must be an int >= 0'),
    (dict(alpha=1.5), r'alpha must be in \[0, 1\]'),
])
def test_argument_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        UncertaintyVisHook(**kwargs)
