"""The extension points of DetectionDistiller (distillers/parts.py): batches,
shared features, parts given as configs, and composition equal to the
registered aliases."""
import copy

import pytest
import torch
from conftest import distiller_cfg, fgd_spec, make_batch, tiny_faster_rcnn, tiny_retinanet
from mmdet.structures import DetDataSample

from mmdet.registry import MODELS
from mmkd_plugins.distillers import (Batch, CrossViewTerm, DetectionDistiller, Features,
                                     GroupDRO, SingleView, TwoViews, WholeBatch)
from mmkd_plugins.distillers.detectors import build_detector_cfg, loss_from_features


def samples(n, tag):
    return [DetDataSample(metainfo=dict(img_id=f'{tag}{i}')) for i in range(n)]


def test_batch_select_takes_the_images_in_every_view():
    x = torch.arange(6.).reshape(6, 1, 1, 1)  # 2 views x 3 images
    hom = torch.stack([torch.eye(3) * (i + 1) for i in range(3)])
    batch = Batch(x, samples(3, 'w') + samples(3, 's'), num_views=2, homographies=hom)
    sub = batch.select([2, 0])
    assert sub.num_views == 2 and sub.num_images == 2
    assert sub.inputs.flatten().tolist() == [2., 0., 5., 3.]
    assert [s.img_id for s in sub.data_samples] == ['w2', 'w0', 's2', 's0']
    assert torch.equal(sub.homographies, hom[[2, 0]])
    one = Batch(x[:3], samples(3, 'w')).select([1])
    assert one.inputs.flatten().tolist() == [1.] and one.homographies is None


def test_features_select_rows_of_features_and_records():
    feats = Features((torch.arange(4.), torch.arange(4.) * 10),
                     {'neck': (torch.arange(4.) + 100, )})
    sub = feats.select([3, 1])
    assert [f.tolist() for f in sub.feats] == [[3., 1.], [30., 10.]]
    assert sub.records['neck'][0].tolist() == [103., 101.]


def test_single_view_refuses_an_empty_batch():
    with pytest.raises(ValueError, match='empty batch'):
        SingleView()(torch.zeros(0, 3, 8, 8), [])


@pytest.mark.parametrize('make_model', [tiny_retinanet, tiny_faster_rcnn],
                         ids=['one-stage', 'two-stage'])
def test_loss_from_features_is_mmdets_loss(make_model):
    """The shared-features path runs the detector's own loss, untouched."""
    torch.manual_seed(0)
    detector = MODELS.build(build_detector_cfg(make_model(), 'model')).eval()
    data = make_batch(detector)
    torch.manual_seed(1)  # the RoI sampler draws
    expected = detector.loss(data['inputs'], copy.deepcopy(data['data_samples']))
    feats = detector.extract_feat(data['inputs'])
    torch.manual_seed(1)
    got = loss_from_features(detector, data['inputs'], feats,
                             copy.deepcopy(data['data_samples']))
    assert got.keys() == expected.keys()
    for key in expected:
        torch.testing.assert_close(got[key], expected[key])
    assert 'extract_feat' not in detector.__dict__


def test_parts_given_as_configs_compose_like_the_aliases():
    """CRLD with group DRO written as parts of a plain DetectionDistiller is
    the registered GroupDROCrossViewDistiller, number for number."""
    loss = dict(type='CrossViewLoss', tau_weak=0.0, tau_strong=0.0)
    base = distiller_cfg(losses={})
    alias = dict(base, type='GroupDROCrossViewDistiller', groups=['a', 'b'], step_size=0.5,
                 cross_view=dict(loss=loss))
    parts = dict(base, views=dict(type='TwoViews'),
                 terms=[dict(type='CrossViewTerm', loss=loss)],
                 objective=dict(type='GroupDRO', groups=['a', 'b'], step_size=0.5))
    outs = []
    for cfg in (alias, parts):
        torch.manual_seed(0)
        model = MODELS.build(cfg)
        assert type(model.views) is TwoViews and type(model.objective) is GroupDRO
        assert isinstance(model.terms[0], CrossViewTerm)
        model.train()
        data = make_batch(model.student, batch_size=3)
        for sample, group in zip(data['data_samples'], 'aba'):
            sample.set_metainfo(dict(group=group))
        strong = (data['inputs'] * 0.5).flip(-1)  # any other view; same boxes
        outs.append(model.loss({'weak': data['inputs'], 'strong': strong},
                               {'weak': data['data_samples'],
                                'strong': copy.deepcopy(data['data_samples'])}))
    assert outs[0].keys() == outs[1].keys()
    for key in outs[0]:
        assert torch.equal(outs[0][key], outs[1][key]), key
    assert outs[0]['gq_a'] != 0.5  # the weights moved: the check above can fail


def test_defaults_and_objects():
    model = MODELS.build(distiller_cfg())
    assert type(model.views) is SingleView and type(model.objective) is WholeBatch
    assert [t.name for t in model.terms] == ['loss_fgd']
    # An objective given as an object keeps its state on the distiller.
    dro = GroupDRO(groups=['x', 'y'])
    model = MODELS.build(dict(distiller_cfg(), objective=dro))
    assert model.objective is dro
    assert torch.equal(model.state_dict()['group_weights'], torch.full((2, ), 0.5))


def test_term_names_must_be_unique():
    cfg = distiller_cfg(losses={'cross_view': fgd_spec()})
    cfg.update(views=dict(type='TwoViews'),
               terms=[dict(type='CrossViewTerm', loss=dict(type='CrossViewLoss'))])
    with pytest.raises(ValueError, match=r"distill_losses: \['cross_view'\] name more than "
                                         'one term'):
        MODELS.build(cfg)


def test_cross_view_term_needs_two_views():
    cfg = distiller_cfg(losses={})
    cfg['terms'] = [dict(type='CrossViewTerm', loss=dict(type='CrossViewLoss'))]
    model = MODELS.build(cfg).train()
    with pytest.raises(ValueError, match=r'two-view batch \(views=TwoViews\(\)\)'):
        model(**make_batch(model), mode='loss')
    assert isinstance(model, DetectionDistiller)
