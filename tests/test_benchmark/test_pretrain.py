"""Backbone pretraining on glyph crops: a tiny run, the cache, and loading
the weights into a detector through init_cfg."""
import pytest
import torch

pytest.importorskip('sklearn')

from mmkd_plugins.benchmark import pretrain  # noqa: E402

BACKBONE = dict(type='ResNet', depth=18, base_channels=8, num_stages=4,
                out_indices=(1, 2, 3), norm_cfg=dict(type='BN', requires_grad=True),
                norm_eval=True, frozen_stages=1, style='pytorch')
TINY = dict(steps=3, batch_size=8, crops=32, crop_size=32, warmup=1, eval_crops=16)


def test_pretrain_then_reuse_then_retrain(tmp_path):
    path = str(tmp_path / 'bb.pth')
    logs = []
    assert pretrain.pretrained_backbone(BACKBONE, path, log=logs.append, **TINY)
    ckpt = torch.load(path, map_location='cpu', weights_only=True)  # plain data only
    meta = ckpt['meta']
    assert meta['key'] == pretrain.cache_key(BACKBONE, dict(pretrain.DEFAULTS, **TINY))
    assert 0.0 <= meta['top1'] <= 1.0 and meta['classes'] == 62
    assert 'layer4.1.conv2.weight' in ckpt['state_dict']
    assert not any(k.startswith('fc') for k in ckpt['state_dict'])  # classifier dropped
    # same backbone and settings: kept as it is
    before = open(path, 'rb').read()
    assert not pretrain.pretrained_backbone(BACKBONE, path, log=logs.append, **TINY)
    assert open(path, 'rb').read() == before and 'nothing to do' in logs[-1]
    # other settings: trained again
    assert pretrain.pretrained_backbone(BACKBONE, path, log=logs.append, **dict(TINY, seed=1))
    assert 'other settings' in ' '.join(logs)


def test_pretraining_changes_the_weights_and_learns(tmp_path):
    path = str(tmp_path / 'bb.pth')
    logs = []
    pretrain.pretrain(BACKBONE, path, log=logs.append,
                      **dict(TINY, steps=60, crops=512, batch_size=64, eval_crops=256, lr=3e-3))
    losses = [float(m.rsplit(' ', 1)[1]) for m in logs if ' loss ' in m]
    ckpt = torch.load(path, map_location='cpu', weights_only=True)
    # frozen_stages / norm_eval of the detector config do not apply while
    # pretraining: the stem moved and BatchNorm statistics were updated
    fresh = pretrain._build_backbone(BACKBONE)
    pretrain._quiet_init(fresh)
    assert not torch.equal(ckpt['state_dict']['conv1.weight'], fresh.conv1.weight)
    assert not torch.equal(ckpt['state_dict']['bn1.running_mean'], fresh.bn1.running_mean)
    assert losses[-1] < losses[0] - 0.2  # it learns (ln 62 = 4.13 at the start)


def test_detector_loads_the_weights(tmp_path):
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules()
    path = str(tmp_path / 'bb.pth')
    pretrain.pretrain(BACKBONE, path, log=lambda m: None, **TINY)
    cfg = dict(BACKBONE, init_cfg=dict(type='Pretrained', checkpoint=path))
    backbone = MODELS.build(cfg)
    backbone.init_weights()
    saved = torch.load(path, map_location='cpu', weights_only=True)['state_dict']
    assert torch.equal(backbone.layer3[0].conv1.weight, saved['layer3.0.conv1.weight'])


def test_unknown_setting():
    with pytest.raises(ValueError, match="unknown pretraining setting.*'step'"):
        pretrain.pretrain(BACKBONE, 'x.pth', step=3)
