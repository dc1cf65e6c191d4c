"""KD^3's per-image weights from the disagreement of dense class maps."""
import math

import pytest
import torch
from conftest import distiller_cfg, make_batch

from mmdet.registry import MODELS
from mmkd_plugins.distillers import DisagreementWeights
from mmkd_plugins.distillers.disagreement_weights import disagreement_weights, image_logits


def test_image_logits_hand_computed():
    # one image, 2 anchors x 2 classes (channels a*C + c), 1 x 2 locations
    level = torch.tensor([[1., 5.],    # anchor 0, class 0
                          [0., -1.],   # anchor 0, class 1
                          [2., 0.],    # anchor 1, class 0
                          [3., 4.]]).view(1, 4, 1, 2)  # anchor 1, class 1
    assert image_logits([level], 2).tolist() == [[5.0, 4.0]]
    # a second level with a larger class-1 logit wins for class 1 only
    other = torch.full((1, 4, 2, 2), -9.0)
    other[0, 3, 1, 1] = 7.0
    assert image_logits([level, other], 2).tolist() == [[5.0, 7.0]]
    with pytest.raises(ValueError, match='does not hold 3 classes'):
        image_logits([level], 3)


def test_disagreement_weights_hand_computed():
    student = torch.tensor([[0., 0.], [1., 2.]])
    teacher = torch.tensor([[3., 4.], [1., 2.]])
    # ||(3, 4)|| = 5: sigmoid(5); agreement: sigmoid(0) = 0.5
    w = disagreement_weights(student.requires_grad_(), teacher)
    assert w.tolist() == pytest.approx([1 / (1 + math.exp(-5)), 0.5])
    assert w[0].item() == pytest.approx(0.993307, abs=1e-6) and not w.requires_grad


def _fa(image_weights=True):
    spec = dict(student='neck', teacher='neck', loss=dict(type='FeatureMSELoss'))
    if image_weights:
        spec['image_weights'] = dict(type='DisagreementWeights', student='bbox_head.retina_cls')
    return spec


@pytest.mark.parametrize('constant', [0.0, 1.0, 2.5])
def test_feature_term_passes_the_weights_to_its_loss(constant, monkeypatch):
    """With the provider's weights all ``k`` the loss is ``k`` times the
    unweighted one (the meaning of ``weights``, losses/base.py)."""
    torch.manual_seed(0)
    weighted = MODELS.build(distiller_cfg(losses=dict(loss_fa=_fa())))
    plain = MODELS.build(distiller_cfg(losses=dict(loss_fa=_fa(False))))
    plain.load_state_dict(weighted.state_dict())
    plain.teacher.load_state_dict(weighted.teacher.state_dict())
    monkeypatch.setattr(DisagreementWeights, '__call__',
                        lambda self, step: torch.full((step.batch.num_images, ), constant))
    data = make_batch(weighted)
    weighted.train(), plain.train()
    got = weighted(**data, mode='loss')['loss_fa']
    ref = plain(**data, mode='loss')['loss_fa']
    assert ref > 0
    torch.testing.assert_close(got, constant * ref)


def test_weights_come_from_the_recorded_head_maps():
    model = MODELS.build(distiller_cfg(losses=dict(loss_fa=_fa())))
    term = model.terms[0]
    assert 'bbox_head.retina_cls' in term.student_modules
    assert 'bbox_head.retina_cls' in term.teacher_modules
    assert term.image_weights.num_classes == 10  # filled from the teacher
    model.train()
    seen = []
    orig = DisagreementWeights.__call__

    def spy(self, step):
        w = orig(self, step)
        seen.append(w)
        return w

    DisagreementWeights.__call__ = spy
    try:
        model(**make_batch(model, batch_size=3), mode='loss')
    finally:
        DisagreementWeights.__call__ = orig
    # random models disagree a lot: the weights saturate towards 1
    assert seen[0].shape == (3, ) and torch.all(seen[0] >= 0.5) and torch.all(seen[0] <= 1)


def test_errors_name_the_key():
    with pytest.raises(ValueError, match=r"image_weights.student must name a dense head"):
        DisagreementWeights(student='neck')
    spec = _fa()
    spec['image_weights']['student'] = 'bbox_head.nope'
    with pytest.raises(ValueError, match=r'distill_losses.loss_fa.image_weights.student: '
                                         r"the student has no module named 'bbox_head.nope'"):
        MODELS.build(distiller_cfg(losses=dict(loss_fa=spec)))
    spec = _fa()
    spec['image_weights']['num_classes'] = 7
    with pytest.raises(ValueError, match=r'distill_losses.loss_fa.image_weights: 10 channels '
                                         r'do not hold num_classes=7'):
        MODELS.build(distiller_cfg(losses=dict(loss_fa=spec)))
