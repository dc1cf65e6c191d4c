"""Backbone pretraining on glyph crops: the benchmark's ImageNet step.

COCO detectors start from ImageNet-pretrained backbones, and distillation
results on COCO are measured from that start. The benchmark mirrors it: each
detector's backbone is first trained to classify 62 glyph classes (digits,
upper- and lower-case letters; a superset of the 20 detection classes, as
ImageNet's 1000 are of COCO's 80) on crops from the same sources as the
detection data (:func:`mmkd_plugins.synthetic.glyphs.glyph_crops`), then the
detector config loads it with ``init_cfg=dict(type='Pretrained', ...)``.

The weights are cached under ``work_dirs/pretrain/``: :func:`pretrained_backbone`
trains a backbone only if its checkpoint is missing or was made from another
backbone config, other settings or another version of the data generator.
The checkpoint holds only tensors and plain data
(``torch.load(weights_only=True)`` reads it), with the held-out top-1
accuracy in its ``meta``.
"""
import copy
import hashlib
import json
import math
import os
import os.path as osp
import time
from typing import Callable, Dict, Optional

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# The detectors' normalisation (mmdet's ImageNet mean and std, RGB order):
# pretraining sees the pixels exactly as the detector's data preprocessor
# gives them.
MEAN = (123.675, 116.28, 103.53)
STD = (58.395, 57.12, 57.375)

DEFAULTS = dict(steps=1500, batch_size=128, crops=48000, crop_size=32, lr=2e-3,
                weight_decay=0.05, warmup=100, eval_crops=4000, seed=0)


class _Classifier(nn.Module):
    """A detector backbone, global average pooling of its last output and a
    linear classifier."""

    def __init__(self, backbone: nn.Module, channels: int, num_classes: int):
        super().__init__()
        self.backbone = backbone
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x):
        feats = self.backbone(x)
        return self.fc(F.adaptive_avg_pool2d(feats[-1], 1).flatten(1))


def _build_backbone(backbone_cfg: dict) -> nn.Module:
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = copy.deepcopy(dict(backbone_cfg))
    # Pretraining trains every stage with live BatchNorm, as ImageNet
    # training does; the detector config decides what it freezes later.
    cfg.update(init_cfg=None, frozen_stages=-1, norm_eval=False)
    cfg.pop('pretrained', None)
    return MODELS.build(cfg)


def _quiet_init(module: nn.Module) -> None:
    """``module.init_weights()`` without mmengine's per-parameter log."""
    import logging
    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        module.init_weights()
    finally:
        logger.setLevel(level)


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float()
    mean = torch.tensor(MEAN).view(1, 3, 1, 1)
    std = torch.tensor(STD).view(1, 3, 1, 1)
    return (x - mean) / std


def cache_key(backbone_cfg: dict, settings: dict) -> str:
    """A short hash of everything that determines the pretrained weights."""
    from mmkd_plugins.synthetic import glyphs
    blob = json.dumps(dict(backbone=_plain(backbone_cfg), settings=settings,
                           generator=glyphs.GENERATOR_VERSION), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def _plain(obj):
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


def pretrain(backbone_cfg: dict, out_path: str, log: Callable[[str], None] = print,
             key: Optional[str] = None, **settings) -> Dict:
    """Train ``backbone_cfg`` to classify glyph crops and save its weights.

    Args:
        backbone_cfg (dict): an MMDetection backbone config (e.g. a
            detector config's ``model.backbone``); its last output feeds the
            classifier.
        out_path (str): where the checkpoint goes.
        log (callable): progress messages.
        key (str, optional): stored in ``meta`` (see :func:`pretrained_backbone`).
        **settings: overrides of :data:`DEFAULTS`: ``steps``, ``batch_size``,
            ``crops`` (training crops, drawn once), ``crop_size``, ``lr``
            (AdamW, linear warm-up for ``warmup`` steps, then cosine to 0),
            ``weight_decay``, ``eval_crops`` (held-out handwriting, another
            seed), ``seed``.

    Returns:
        dict: the checkpoint's ``meta`` (settings, held-out top-1 accuracy,
        seconds).
    """
    from mmkd_plugins.synthetic import glyphs
    unknown = sorted(set(settings) - set(DEFAULTS))
    if unknown:
        raise ValueError(f'unknown pretraining setting(s) {unknown}; known: {sorted(DEFAULTS)}')
    s = dict(DEFAULTS, **settings)
    start = time.time()
    torch.manual_seed(s['seed'])
    backbone = _build_backbone(backbone_cfg)
    _quiet_init(backbone)
    backbone.eval()
    with torch.no_grad():
        probe = backbone(torch.zeros(1, 3, s['crop_size'], s['crop_size']))
    model = _Classifier(backbone, probe[-1].shape[1], len(glyphs.PRETRAIN_CLASSES))
    log(f'pretrain: rendering {s["crops"]} crops of {s["crop_size"]} px')
    images, labels = glyphs.glyph_crops(s['crops'], s['crop_size'], seed=s['seed'])
    # On a lent GPU the crops fit on it whole (48000 x 3 x 32 x 32 floats = 0.6 GB).
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    model.to(device)
    x_all, y_all = _to_tensor(images).to(device), torch.from_numpy(labels).to(device)
    optim = torch.optim.AdamW(model.parameters(), lr=s['lr'], weight_decay=s['weight_decay'])

    def lr_at(step):
        if step < s['warmup']:
            return s['lr'] * (step + 1) / s['warmup']
        t = (step - s['warmup']) / max(1, s['steps'] - s['warmup'])
        return s['lr'] * 0.5 * (1 + math.cos(math.pi * t))

    order = torch.Generator().manual_seed(s['seed'])
    perm = torch.randperm(len(x_all), generator=order).to(device)
    cursor = 0
    model.train()
    for step in range(s['steps']):
        if cursor + s['batch_size'] > len(perm):
            perm, cursor = torch.randperm(len(x_all), generator=order).to(device), 0
        idx = perm[cursor:cursor + s['batch_size']]
        cursor += s['batch_size']
        for group in optim.param_groups:
            group['lr'] = lr_at(step)
        loss = F.cross_entropy(model(x_all[idx]), y_all[idx])
        optim.zero_grad()
        loss.backward()
        optim.step()
        if step % 100 == 0 or step == s['steps'] - 1:
            log(f'pretrain: step {step}/{s["steps"]} loss {loss.item():.3f}')
    accuracy = evaluate(model, s)
    meta = dict(key=key, settings=s, top1=round(accuracy, 4), seconds=round(time.time() - start, 1),
                classes=len(glyphs.PRETRAIN_CLASSES))
    os.makedirs(osp.dirname(osp.abspath(out_path)), exist_ok=True)
    tmp = out_path + '.tmp'
    state = {k: v.cpu() for k, v in backbone.state_dict().items()}
    torch.save(dict(state_dict=state, meta=meta), tmp)
    os.replace(tmp, out_path)
    log(f'pretrain: held-out top-1 {accuracy:.3f}, {meta["seconds"]:.0f} s -> {out_path}')
    return meta


@torch.no_grad()
def evaluate(model: nn.Module, settings: dict) -> float:
    """Top-1 accuracy on crops with held-out handwriting and another seed."""
    from mmkd_plugins.synthetic import glyphs
    images, labels = glyphs.glyph_crops(settings['eval_crops'], settings['crop_size'],
                                        seed=settings['seed'] + 1, held_out=True)
    model.eval()
    correct = 0
    device = next(model.parameters()).device
    for i in range(0, len(images), 500):
        logits = model(_to_tensor(images[i:i + 500]).to(device)).cpu()
        correct += int((logits.argmax(1) == torch.from_numpy(labels[i:i + 500])).sum())
    return correct / len(images)


def pretrained_backbone(backbone_cfg: dict, path: str, force: bool = False,
                        log: Callable[[str], None] = print, **settings) -> bool:
    """Make sure ``path`` holds ``backbone_cfg`` pretrained with
    ``settings``: kept if its stored key matches (unless ``force``),
    (re)trained otherwise.

    The path is fixed (the detector configs name it); the key, a hash of
    the backbone config, the settings and the data generator's version, is
    stored in the checkpoint's ``meta``.

    Returns:
        bool: whether it trained.
    """
    s = dict(DEFAULTS, **settings)
    key = cache_key(backbone_cfg, s)
    if osp.isfile(path) and not force:
        meta = read_meta(path) or {}
        if meta.get('key') == key:
            log(f'pretrain: {path} already holds this backbone pretrained with these '
                f'settings (held-out top-1 {meta["top1"]:.3f}); nothing to do.')
            return False
        log(f'pretrain: {path} was made with other settings (key {meta.get("key")} '
            f'!= {key}); training it again')
    pretrain(backbone_cfg, path, log=log, key=key, **s)
    return True


def read_meta(path: str) -> Optional[dict]:
    """The ``meta`` stored in a pretrained checkpoint."""
    return torch.load(path, map_location='cpu', weights_only=True).get('meta')
