"""KD^3's MixDistribution: statistics, mixing, the contrastive loss, and the
term inside a distiller (the teacher never sees the mixed images)."""
import math

import pytest
import torch
from conftest import distiller_cfg, make_batch, tiny_retinanet

from mmdet.registry import MODELS
from mmkd_plugins.distillers.mix_distribution import (MixDistribution, channel_stats,
                                                      contrastive_loss, mix_style)


def test_channel_stats_hand_computed():
    x = torch.tensor([1., 2., 3., 4.]).view(1, 1, 2, 2)
    mu, sig = channel_stats(x, eps=0.0)
    # mean 2.5; unbiased variance (2.25 + .25 + .25 + 2.25) / 3 = 5/3
    assert mu.item() == pytest.approx(2.5)
    assert sig.item() == pytest.approx(math.sqrt(5 / 3))
    assert mu.shape == sig.shape == (1, 1, 1, 1)
    # eps is added to the variance, and the statistics carry no gradient
    _, sig_eps = channel_stats(x.requires_grad_(), eps=1.0)
    assert sig_eps.item() == pytest.approx(math.sqrt(5 / 3 + 1)) and not sig_eps.requires_grad


def test_mix_style_swaps_and_keeps_statistics():
    a = torch.tensor([1., 2., 3., 4.]).view(1, 1, 2, 2)   # mean 2.5, sd sqrt(5/3)
    b = torch.tensor([10., 10., 20., 20.]).view(1, 1, 2, 2)  # mean 15, sd sqrt(100/3)
    x = torch.cat([a, b])
    swap = torch.tensor([1, 0])
    # lambda = 1: every image keeps its own statistics, i.e. is unchanged
    torch.testing.assert_close(mix_style(x, torch.ones(2), swap, eps=0.0), x)
    # lambda = 0: image 0 takes image 1's statistics and vice versa
    out = mix_style(x, torch.zeros(2), swap, eps=0.0)
    mu, sig = channel_stats(out, eps=0.0)
    assert mu.flatten().tolist() == pytest.approx([15.0, 2.5])
    assert sig.flatten().tolist() == pytest.approx([math.sqrt(100 / 3), math.sqrt(5 / 3)])
    # image 0 normalised is (-1.5, -.5, .5, 1.5) / sqrt(5/3); restyled by image 1
    expected = torch.tensor([-1.5, -0.5, 0.5, 1.5]) / math.sqrt(5 / 3) * math.sqrt(100 / 3) + 15
    torch.testing.assert_close(out[0].flatten(), expected)
    # lambda = 1/2: mean and sd halfway
    mu, sig = channel_stats(mix_style(x, torch.full((2, ), 0.5), swap, eps=0.0), eps=0.0)
    assert mu.flatten().tolist() == pytest.approx([8.75, 8.75])
    half = (math.sqrt(5 / 3) + math.sqrt(100 / 3)) / 2
    assert sig.flatten().tolist() == pytest.approx([half, half])


def test_contrastive_loss_hand_computed():
    e1, e2 = torch.tensor([1., 0.]), torch.tensor([0., 1.])
    a = torch.stack([e1, e2])
    # rows [e1, e2, e1, e2]: each row's positive has similarity 1, the other
    # two rows 0: -log(e^{1/t} / (e^{1/t} + 2)) = log(2 + e^2) - 2 at t = 0.5
    assert contrastive_loss(a, a.clone(), 0.5).item() == pytest.approx(
        math.log(2 + math.e ** 2) - 2, abs=1e-6)
    assert math.log(2 + math.e ** 2) - 2 == pytest.approx(0.239545, abs=1e-6)
    # scale does not matter (embeddings are normalised); one image: nothing to contrast
    assert contrastive_loss(3 * a, a, 0.5).item() == pytest.approx(0.239545, abs=1e-6)
    assert contrastive_loss(a[:1], a[:1] * 2, 0.3).item() == pytest.approx(0.0, abs=1e-6)
    # swapped positives are worse than matched ones
    assert contrastive_loss(a, a.flip(0), 0.5) > contrastive_loss(a, a, 0.5)


def test_batch_augment():
    torch.manual_seed(0)
    x = torch.randn(4, 3, 8, 8) * 5 + 2
    samples = ['a', 'b', 'c', 'd']
    out, same = MixDistribution()(x, samples)
    assert out.shape == x.shape and same is samples and not torch.equal(out, x)
    # each output's mean is a convex mix of two inputs' means, per channel
    mu_in, _ = channel_stats(x)
    mu_out, _ = channel_stats(out)
    lo, hi = mu_in.min(0).values, mu_in.max(0).values
    assert torch.all(mu_out >= lo - 1e-4) and torch.all(mu_out <= hi + 1e-4)
    assert MixDistribution(p=0.0)(x)[0] is x
    with pytest.raises(ValueError, match='alpha'):
        MixDistribution(alpha=0.0)
    with pytest.raises(ValueError, match='p must be in'):
        MixDistribution(p=1.5)


def test_term_in_a_distiller_trains_the_student_only_on_its_own_pass():
    model = MODELS.build(distiller_cfg(
        losses={}, terms=[dict(type='MixDistributionTerm', module='neck', loss_weight=1.0)],
        detection_loss=False))
    model.train()
    calls = []
    model.teacher.backbone.register_forward_hook(lambda *a: calls.append('teacher'))
    model.student.backbone.register_forward_hook(lambda *a: calls.append('student'))
    torch.manual_seed(0)
    losses = model(**make_batch(model, batch_size=3), mode='loss')
    assert list(losses) == ['loss_mixdist']
    assert losses['loss_mixdist'] > 0 and torch.isfinite(losses['loss_mixdist'])
    # the student runs on the images and on their mixed copy; the teacher not at all
    assert calls == ['student', 'student']
    losses['loss_mixdist'].backward()
    assert model.student.backbone.conv1.weight.grad.abs().sum() > 0
    assert model.distill_losses['loss_mixdist'].embed.weight.grad is not None
    # embedding of the 3 FPN levels of 16 channels each, 128 wide
    assert model.distill_losses['loss_mixdist'].embed.weight.shape == (128, 48)


def test_term_errors():
    with pytest.raises(ValueError, match="terms.loss_mixdist.module='bbox_head'"):
        MODELS.build(distiller_cfg(terms=[dict(type='MixDistributionTerm', module='bbox_head')]))
    with pytest.raises(ValueError, match='name must start with "loss"'):
        MODELS.build(distiller_cfg(terms=[dict(type='MixDistributionTerm', name='mix')]))
    with pytest.raises(ValueError, match='terms.loss_mixdist.module: the student has no module'):
        MODELS.build(distiller_cfg(terms=[dict(type='MixDistributionTerm', module='nope')]))
