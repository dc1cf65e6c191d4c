"""The new-method example of docs/architecture.md, run as it stands there."""
import copy
import os.path as osp
import re

import pytest
import torch
from conftest import distiller_cfg, make_batch

from mmdet.registry import MODELS
from mmkd_plugins.distillers import DetectionDistiller

DOC = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'docs', 'architecture.md')


@pytest.fixture(scope='module')
def example():
    """The one python block of the doc's example section, executed; the
    registry forgets its classes afterwards, so the suite stays as it was."""
    text = open(DOC).read()
    section = text[text.index('## A new method against the extension points'):]
    blocks = re.findall(r'```python\n(.*?)```', section, flags=re.S)
    assert len(blocks) == 1
    names = {'__name__': 'architecture_example'}
    exec(compile(blocks[0], DOC, 'exec'), names)
    yield names
    for cls in ('PooledFeatureTerm', 'ConfidentImages'):
        MODELS.module_dict.pop(cls, None)


def build(threshold):
    torch.manual_seed(0)
    return MODELS.build(distiller_cfg(terms=[dict(type='PooledFeatureTerm')],
                                      objective=dict(type='ConfidentImages',
                                                     threshold=threshold)))


def test_the_example_trains(example):
    model = build(threshold=0.0).train()
    assert isinstance(model.terms[-1], example['PooledFeatureTerm'])
    assert 'adapters.pooled.weight' in model.state_dict()  # the projector is saved
    losses = model(**make_batch(model), mode='loss')
    assert {'loss_cls', 'loss_fgd', 'loss_pooled'} <= set(losses)
    assert losses['loss_pooled'] > 0
    model.parse_losses(losses)[0].backward()
    assert model.adapters['pooled'].weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in model.teacher.parameters())


def test_the_example_objective_selects_confident_images(example, monkeypatch):
    model = build(threshold=0.0)
    data = make_batch(model, batch_size=4)
    with torch.no_grad():
        feats = model.teacher.extract_feat(data['inputs'])
        scores = model.teacher.bbox_head(feats)[0]
    conf = torch.stack([s.sigmoid().flatten(1).amax(1) for s in scores]).amax(0)
    threshold = conf.median().item()
    model.objective.threshold = threshold
    seen, step = [], DetectionDistiller.step

    def spy(self, batch, features=None):
        seen.append([s.img_id for s in batch.data_samples])
        return step(self, batch, features)

    monkeypatch.setattr(DetectionDistiller, 'step', spy)
    model.train()(**copy.deepcopy(data), mode='loss')
    ids = [s.img_id for s in data['data_samples']]
    expected = [ids[i] for i in range(4) if conf[i] >= threshold]
    assert seen == [expected] and 0 < len(expected) < 4
    model.objective.threshold = 2.0  # no image is that sure: all are kept
    model(**copy.deepcopy(data), mode='loss')
    assert seen[-1] == ids
