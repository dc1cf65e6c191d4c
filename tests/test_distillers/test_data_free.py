"""Data-free distillation (TA-DFKD): each loss term on hand-computed values,
the lenient filter on hand-made losses, the generator, and the distiller's
two-optimiser training step."""
import copy
import math

import numpy as np
import pytest
import torch
from conftest import data_free_cfg
from torch import nn

from mmdet.registry import MODELS
from mmkd_plugins.distillers import DataFree, DataFreeOptimWrapperConstructor
from mmkd_plugins.distillers.data_free import BNStatistics
from mmkd_plugins.distillers.lenient_filter import lenient_keep, self_ce_scores
from mmkd_plugins.losses.generator_loss import (adversarial_loss, binary_js,
                                                bn_statistics_distance, softmax_js,
                                                total_variation)
from mmkd_plugins.distillers.generators import GaussianNoiseImages, ImageGenerator


# -- L_BN ---------------------------------------------------------------------
def _bn_input():
    # channel 0: 1 2 3 4 -> mean 2.5, biased var 1.25
    # channel 1: 0 0 0 4 -> mean 1, biased var (1 + 1 + 1 + 9) / 4 = 3
    return torch.tensor([[[[1., 2.], [3., 4.]], [[0., 0.], [0., 4.]]]])


def test_bn_statistics_distance_by_hand():
    d = bn_statistics_distance(_bn_input(), torch.tensor([2., 1.]), torch.tensor([1., 1.]))
    # ||(1 - 1.25, 1 - 3)|| + ||(2 - 2.5, 1 - 1)|| = sqrt(0.0625 + 4) + 0.5
    assert d.item() == pytest.approx(math.sqrt(4.0625) + 0.5)


class _OneBNTeacher(nn.Module):
    def __init__(self, norm=None):
        super().__init__()
        self.backbone = nn.Sequential(norm if norm is not None else nn.BatchNorm2d(2))
        self.neck = nn.Identity()


def test_bn_statistics_hooks_record_inside_the_block_only():
    teacher = _OneBNTeacher().eval()
    bn = teacher.backbone[0]
    bn.running_mean.copy_(torch.tensor([2., 1.]))
    bn.running_var.copy_(torch.tensor([1., 1.]))
    stats = BNStatistics(teacher, 'backbone')
    teacher.backbone(_bn_input())  # outside: nothing recorded, nothing raised
    with stats.record() as distances:
        teacher.backbone(_bn_input())
        teacher.backbone(_bn_input() + 1)  # mean +1 each channel: ||(1.5, 0)||... below
    assert len(distances) == 2
    assert distances[0].item() == pytest.approx(math.sqrt(4.0625) + 0.5)
    # shifted: the variances are unchanged, the means are (3.5, 2)
    assert distances[1].item() == pytest.approx(math.sqrt(4.0625) + math.sqrt(1.5**2 + 1))
    with stats.record() as again:
        pass
    assert again == []


@pytest.mark.parametrize('norm', [nn.GroupNorm(1, 2), nn.BatchNorm2d(2, track_running_stats=False)],
                         ids=['group-norm', 'bn-without-stats'])
def test_teacher_without_bn_statistics_is_refused(norm):
    with pytest.raises(ValueError, match=r"teacher: no BatchNorm layer with running statistics "
                                         r"under data_free.bn_scope='backbone'"):
        BNStatistics(_OneBNTeacher(norm), 'backbone')


def test_unknown_bn_scope_is_named():
    with pytest.raises(ValueError, match=r"data_free.bn_scope='trunk': the teacher has no module"):
        BNStatistics(_OneBNTeacher(), 'trunk')


# -- L_TV ---------------------------------------------------------------------
def test_total_variation_by_hand():
    image = torch.tensor([[[[0., 1.], [2., 3.]]]])
    # horizontal (-1, -1), vertical (-2, -2), diagonals 2 - 1 and 0 - 3
    expected = math.sqrt(2) + math.sqrt(8) + 1 + 3
    assert total_variation(image).item() == pytest.approx(expected)
    assert total_variation(torch.full((2, 3, 5, 5), 0.7)).item() == 0


# -- L_adv: JS on sigmoid maps ------------------------------------------------
def _logit(p):
    return math.log(p / (1 - p))


def test_binary_js_by_hand():
    s, t = torch.tensor([_logit(0.2)]), torch.tensor([_logit(0.6)])
    # m = 0.4; KL(B(.4)||B(.2)) = .4 ln 2 + .6 ln .75; KL(B(.4)||B(.6)) = .4 ln(2/3) + .6 ln 1.5
    kl_s = 0.4 * math.log(2) + 0.6 * math.log(0.75)
    kl_t = 0.4 * math.log(2 / 3) + 0.6 * math.log(1.5)
    assert binary_js(s, t, temperature=1.0).item() == pytest.approx((kl_s + kl_t) / 2, rel=1e-5)
    assert (kl_s + kl_t) / 2 == pytest.approx(0.0928715, abs=1e-6)
    # the temperature divides the logits
    assert binary_js(2 * s, 2 * t, temperature=2.0).item() == pytest.approx((kl_s + kl_t) / 2,
                                                                            rel=1e-5)
    assert binary_js(s, s).item() == pytest.approx(0, abs=1e-7)


def test_binary_js_clamps_saturated_probabilities():
    # p_s -> 0 and p_t -> 1 are clamped to 0.01 and 0.99; m = 0.5, so both KL
    # terms are KL(B(.5)||B(.01)) = .5 ln 50 + .5 ln(.5 / .99)
    js = binary_js(torch.tensor([-20.]), torch.tensor([20.]), temperature=1.0)
    assert js.item() == pytest.approx(0.5 * math.log(50) + 0.5 * math.log(0.5 / 0.99), rel=1e-5)


def test_adversarial_loss_is_one_minus_the_clamped_mean():
    kl_s = 0.4 * math.log(2) + 0.6 * math.log(0.75)
    kl_t = 0.4 * math.log(2 / 3) + 0.6 * math.log(1.5)
    js_one = (kl_s + kl_t) / 2
    # two levels of two and one elements; one element disagrees as above
    student = ([torch.tensor([[[[_logit(0.2)], [0.0]]]]), torch.tensor([[[[1.0]]]])], )
    teacher = ([torch.tensor([[[[_logit(0.6)], [0.0]]]]), torch.tensor([[[[1.0]]]])], )
    loss = adversarial_loss(student, teacher, temperature=1.0)
    assert loss.item() == pytest.approx(1 - js_one / 3, rel=1e-5)
    # a mean JS above 1 is clamped: the loss bottoms out at 0
    far = adversarial_loss(([torch.full((1, 2, 2, 2), -30.)], ),
                           ([torch.full((1, 2, 2, 2), 30.)], ), temperature=1.0)
    assert far.item() == 0


def test_softmax_js_by_hand():
    # P = (.5, .5), Q = (.75, .25), M = (.625, .375)
    s, t = torch.tensor([[0.0, 0.0]]), torch.tensor([[math.log(3), 0.0]])
    kl_p = 0.625 * math.log(1.25) + 0.375 * math.log(0.75)
    kl_q = 0.625 * math.log(0.625 / 0.75) + 0.375 * math.log(1.5)
    assert softmax_js(s, t, dim=1, temperature=1.0).item() == pytest.approx(
        (kl_p + kl_q) / 2, rel=1e-5)


def test_gfl_box_distributions_add_their_own_term():
    g = torch.Generator().manual_seed(0)
    cls = [torch.randn(2, 3, 4, 4, generator=g)]
    boxes_s = [torch.randn(2, 4 * 5, 4, 4, generator=g)]
    boxes_t = [torch.randn(2, 4 * 5, 4, 4, generator=g)]
    plain = adversarial_loss((cls, boxes_s), (cls, boxes_t))
    assert plain.item() == pytest.approx(1.0)  # identical class maps: JS 0
    gfl = adversarial_loss((cls, boxes_s), (cls, boxes_t), reg_max=4)
    side = lambda x: x.reshape(2, 4, 5, 4, 4)  # noqa: E731
    box_js = softmax_js(side(boxes_s[0]), side(boxes_t[0]), 2).mean()
    assert 0 < box_js < 1
    assert gfl.item() == pytest.approx(2 - box_js.item(), rel=1e-5)


# -- the lenient filter ---------------------------------------------------------
def test_self_ce_scores_by_hand():
    # level 0 holds logits ln 3 (p .75) and -10, level 1 holds 0 (p .5) and -ln 3
    levels = [torch.tensor([[[[math.log(3), -10.]]]]), torch.tensor([[[[0., -math.log(3)]]]])]
    ce_75, ce_50 = -math.log(0.75), math.log(2)
    assert self_ce_scores(levels, topk=2).item() == pytest.approx((ce_75 + ce_50) / 2)
    # the third entry by p is -ln 3: max(p, 1 - p) is .75 again
    assert self_ce_scores(levels, topk=3).item() == pytest.approx((2 * ce_75 + ce_50) / 3)
    assert self_ce_scores(levels, topk=100).shape == (1, )


CLEAN, NOISY = [0.10, 0.12, 0.11, 0.13], [0.90, 0.95, 0.92]


def test_lenient_keep_keeps_the_low_loss_cluster():
    losses = [0.90, 0.10, 0.95, 0.12, 0.92, 0.11, 0.13]  # clean and noisy interleaved
    keep = lenient_keep(losses)
    assert keep.tolist() == [v in CLEAN for v in losses]
    # min-max normalisation: any affine change of the losses keeps the same images
    assert lenient_keep(3 * np.array(losses) + 7).tolist() == keep.tolist()
    # the low-mean component is chosen, whichever index the fit gave it
    assert lenient_keep([1 - v for v in losses]).tolist() == [v in NOISY for v in losses]


def test_lenient_keep_degenerate_batches_keep_everything():
    assert lenient_keep([0.3]).tolist() == [True]
    assert lenient_keep([0.2, 0.2, 0.2]).tolist() == [True] * 3
    assert lenient_keep(torch.tensor([0.5, 0.1])).dtype == bool


def test_lenient_keep_always_keeps_the_cleanest_image():
    # no posterior exceeds 1, so only the guaranteed lowest-loss image stays
    losses = CLEAN + NOISY
    assert lenient_keep(losses, threshold=1.0).tolist() == [v == 0.10 for v in losses]


# -- generators -----------------------------------------------------------------
def test_generator_at_the_official_size_is_the_official_layout():
    g = ImageGenerator(nz=1000, ngf=64, img_size=32, init_size=8, out_size=32)
    assert g.fc.out_features == 128 * 8 * 8
    convs = [m for m in g.modules() if isinstance(m, nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(128, 128), (128, 64), (64, 3)]
    bns = [m for m in g.modules() if isinstance(m, nn.BatchNorm2d)]
    assert [b.eps for b in bns] == [1e-5, 0.8, 0.8]
    images = g(g.sample_latent(4, torch.Generator().manual_seed(0)))
    assert images.shape == (4, 3, 32, 32) and 0 <= images.min() and images.max() <= 1


def test_generator_upsamples_to_out_size_and_checks_its_sizes():
    g = ImageGenerator(nz=8, ngf=4, img_size=16, init_size=4, out_size=48)
    assert g(torch.randn(2, 8)).shape == (2, 3, 48, 48)
    with pytest.raises(ValueError, match='img_size / init_size must be a power of 2'):
        ImageGenerator(img_size=48, init_size=8)
    with pytest.raises(ValueError, match='out_size=32 is smaller than img_size=64'):
        ImageGenerator(img_size=64, out_size=32)


def test_noise_images():
    noise = GaussianNoiseImages(img_size=32, out_size=64, std=0.25)
    latent = noise.sample_latent(3, torch.Generator().manual_seed(0))
    images = noise(latent)
    assert images.shape == (3, 3, 64, 64) and 0 <= images.min() and images.max() <= 1
    assert list(noise.parameters()) == []
    full = GaussianNoiseImages(img_size=32, out_size=32)(latent)
    torch.testing.assert_close(full, (0.5 + 0.25 * latent).clamp(0, 1))


# -- the distiller ---------------------------------------------------------------
OPTIM = dict(student=dict(optimizer=dict(type='SGD', lr=0.05)),
             generator=dict(optimizer=dict(type='Adam', lr=1e-2)))


def build(seed=0, **kwargs):
    torch.manual_seed(seed)
    model = MODELS.build(data_free_cfg(**kwargs))
    model.train()
    return model, DataFreeOptimWrapperConstructor(copy.deepcopy(OPTIM))(model)


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def changed(before, module, buffers=True):
    state = module.state_dict() if buffers else dict(module.named_parameters())
    return {k for k, v in state.items() if not torch.equal(v, before[k])}


def test_train_step_alternates_student_and_generator_steps():
    model, wrappers = build()
    teacher = snapshot(model.teacher)
    gen, student = snapshot(model.generator), snapshot(model.student)
    batch = dict(index=[0, 1, 2, 3])

    log = model.train_step(batch, wrappers)  # iteration 0: student step only
    assert {'loss', 'loss_cls', 'loss_pkd', 'kept_frac', 'draws', 'images',
            'boxes_per_image'} <= set(log)
    assert not any(k.startswith('g_') for k in log)
    # (drawing in training mode moves the generator's BN running statistics,
    # as in the official code; only its weights wait for the generator step)
    assert not changed(gen, model.generator, buffers=False)
    assert changed(student, model.student)
    assert 0 < log['kept_frac'] <= 1

    gen = snapshot(model.generator)
    log = model.train_step(batch, wrappers)  # iteration 1: + a generator step
    assert {'g_loss', 'g_loss_adv', 'g_loss_bn', 'g_loss_tv', 'g_loss_l2',
            'g_kept_frac'} <= set(log)
    assert log['g_loss_bn'] > 0 and 0 <= log['g_loss_adv'] <= 1
    assert changed(gen, model.generator) >= {'fc.weight', 'to_image.0.weight'}
    # the adversarial term's gradient on the student is not left for the next step
    assert all(p.grad is None or not p.grad.any() for p in model.student.parameters())
    assert not changed(teacher, model.teacher) and not model.teacher.training
    assert int(model.data_free_step) == 2


def test_the_images_of_a_step_depend_on_the_seed_and_step_only():
    logs = []
    for _ in range(2):
        model, wrappers = build(seed=3)
        logs.append([model.train_step(dict(index=[0, 1, 2]), wrappers) for _ in range(3)])
    for a, b in zip(*logs):
        assert a.keys() == b.keys()
        assert all(torch.equal(torch.as_tensor(a[k]), torch.as_tensor(b[k])) for k in a)
    other, wrappers = build(seed=4)
    assert other.train_step(dict(index=[0, 1, 2]), wrappers)['loss'] != logs[0][0]['loss']


def test_without_the_filter_every_image_is_kept():
    model, wrappers = build(lenient_filter=None)
    log = model.train_step(dict(index=[0, 1, 2, 3]), wrappers)
    assert log['kept_frac'] == 1 and log['draws'] == 1 and log['images'] == 4
    log = model.train_step(dict(index=[0, 1, 2, 3]), wrappers)
    assert log['g_kept_frac'] == 1


def test_the_filter_draws_again_to_fill_the_batch():
    model, wrappers = build(max_draws=3)
    seen = []
    model.teacher.backbone.register_forward_pre_hook(lambda m, a: seen.append(a[0].shape[0]))
    log = model.train_step(dict(index=list(range(6))), wrappers)
    draws = int(log['draws'])
    assert seen == [6] * draws
    assert draws > 1  # this seed's first split keeps fewer than six
    assert 0 < log['kept_frac'] < 1  # what the filter kept of the 6 * draws images
    if draws < 3:  # it stopped because the batch was full
        assert log['images'] == 6


def test_noise_images_train_the_student_alone():
    model, wrappers = build(generator=dict(type='GaussianNoiseImages', img_size=32, out_size=64),
                            lenient_filter=None)
    assert set(wrappers.keys()) == {'student'}
    for _ in range(2):
        log = model.train_step(dict(index=[0, 1]), wrappers)
    assert not any(k.startswith('g_') for k in log)


def test_optimisers_split_generator_from_everything_else():
    model, wrappers = build()
    gen = {id(p) for p in model.generator.parameters()}
    assert {id(p) for g in wrappers['generator'].param_groups for p in g['params']} == gen
    student = {id(p) for g in wrappers['student'].param_groups for p in g['params']}
    assert not student & gen
    assert {id(p) for p in model.adapters.parameters()} <= student
    assert {id(p) for p in model.student.parameters()} <= student
    with pytest.raises(ValueError, match=r"takes the keys 'student' and 'generator'"):
        DataFreeOptimWrapperConstructor(dict(student=OPTIM['student']))


def test_train_step_names_what_is_missing():
    model, wrappers = build()
    with pytest.raises(TypeError, match='must be a DataFreeDataset'):
        model.train_step(dict(inputs=[torch.zeros(3, 64, 64)]), wrappers)
    with pytest.raises(TypeError, match="constructor='DataFreeOptimWrapperConstructor'"):
        model.train_step(dict(index=[0]), wrappers['student'])
    with pytest.raises(RuntimeError, match='trains from generated images in train_step'):
        model.loss(torch.zeros(1, 3, 64, 64), [])


@pytest.mark.parametrize('change,message', [
    (dict(losses={}), 'distill_losses is empty'),
    (dict(generator=dict(type='ImageGenerator', nz=8, ngf=4, img_size=16, init_size=4,
                         out_size=48)),
     r"data_free.generator.out_size=48 is not a multiple of the student's pad_size_divisor=32"),
    (dict(lenient_filter=dict(top_k=10)),
     r"data_free.lenient_filter: unknown key\(s\) \['top_k'\]"),
    (dict(student_steps=0), 'data_free.student_steps must be >= 1'),
])
def test_build_errors_name_the_key(change, message):
    with pytest.raises((ValueError, TypeError), match=message):
        MODELS.build(data_free_cfg(**change))


def test_heads_must_compare_class_by_class():
    cfg = data_free_cfg()
    cfg['student']['bbox_head']['num_classes'] = 5
    cfg['distill_losses'] = dict(loss_pkd=dict(student='neck', teacher='neck',
                                               loss=dict(type='PKDLoss')))
    with pytest.raises(ValueError, match='the dense heads of student and teacher differ'):
        MODELS.build(cfg)


def test_data_free_objective_needs_detection_loss_off():
    cfg = data_free_cfg()
    cfg.pop('data_free')
    cfg.update(type='DetectionDistiller', objective=DataFree(
        generator=dict(type='GaussianNoiseImages', img_size=32, out_size=64)))
    with pytest.raises(ValueError, match='detection_loss=False'):
        MODELS.build(cfg)
    with pytest.raises(ValueError, match='DataFreeDistiller sets objective itself'):
        MODELS.build(dict(data_free_cfg(), objective=dict(type='WholeBatch')))


def test_sample_shows_the_generator_without_changing_it():
    model, _ = build()
    before = snapshot(model.generator)
    images, detections = model.objective.sample(model, 3, seed=5)
    again, _ = model.objective.sample(model, 3, seed=5)
    assert images.shape == (3, 3, 64, 64) and torch.equal(images, again)
    assert not changed(before, model.generator)  # BN running statistics included
    assert len(detections) == 3 and all(d.bboxes.shape[1] == 4 for d in detections)
