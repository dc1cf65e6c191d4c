"""Inference cost: FLOPs as get_flops.py counts them, latency as
mmdet's InferenceBenchmark times it."""
import time

import pytest
import torch
from conftest import tiny_retinanet
from mmdet.testing import demo_mm_inputs

from mmkd_plugins.zoo.cost import build_model, count_flops, inference_cost, time_inference


def batch(size):
    packed = demo_mm_inputs(batch_size=1, image_shapes=(3, *size), num_items=[2],
                            num_classes=10)
    return {'inputs': packed['inputs'], 'data_samples': packed['data_samples']}


@pytest.fixture(scope='module')
def models():
    torch.manual_seed(0)
    return {'small': build_model(tiny_retinanet(width=8, fpn=16), None),
            'wide': build_model(tiny_retinanet(width=16, fpn=32), None)}


def test_flops_grow_with_the_image_and_the_width(models):
    small = models['small']
    at64 = count_flops(small, [batch((64, 64))])
    at128 = count_flops(small, [batch((128, 128))])
    # Convolutions dominate: 4x the pixels, ~4x the FLOPs.
    assert 3.6 < at128['flops'] / at64['flops'] < 4.4
    assert at64['input_shape'] == (64, 64)
    # Odd sizes are padded to the preprocessor's divisor (32) first, as in get_flops.py.
    assert count_flops(small, [batch((70, 90))])['input_shape'] == (96, 96)
    # Twice the channels: ~4x the FLOPs of every 3x3 conv.
    wide = count_flops(models['wide'], [batch((64, 64))])
    assert 3 < wide['flops'] / at64['flops'] < 4.5
    # The model's forward is restored afterwards.
    assert 'partial' not in repr(small.forward)


def test_flops_are_the_mean_over_images(models):
    small = models['small']
    both = count_flops(small, [batch((64, 64)), batch((128, 128))])
    one = [count_flops(small, [batch(s)])['flops'] for s in ((64, 64), (128, 128))]
    assert both['flops'] == int(sum(one) / 2)


class SleepyModel:
    """test_step sleeps: 0.3 s for the first call (a cold start), then 20 ms."""

    def __init__(self):
        self.calls = 0

    def test_step(self, data):
        self.calls += 1
        time.sleep(0.3 if self.calls == 1 else 0.02)


def test_latency_leaves_out_the_warmup():
    model = SleepyModel()
    timing = time_inference(model, [{}], num_images=5, warmup=2)
    assert model.calls == 7
    assert 19 < timing['ms_per_img'] < 60  # the 300 ms warm-up call is not in it
    assert timing['fps'] == pytest.approx(1000 / timing['ms_per_img'])


def test_inference_cost_side_by_side(models):
    costs = inference_cost(models, [batch((64, 64))], num_images=2, warmup=1, rounds=2)
    assert set(costs) == {'small', 'wide'}
    for name, cost in costs.items():
        assert cost['params'] == sum(p.numel() for p in models[name].parameters())
        assert cost['ms_per_img'] > 0 and cost['fps'] == pytest.approx(1000 / cost['ms_per_img'])
    assert costs['wide']['flops'] > costs['small']['flops']
