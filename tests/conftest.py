"""Tiny detectors, data and runner configs shared by the tests.

Everything here runs on the CPU in well under a second per step: ResNet-18
layouts at 8-16 base channels, FPN 16-32 wide, 64x64 images.
"""
import copy
import json
import os
import os.path as osp

import pytest
import torch
from mmengine.config import Config

import mmkd_plugins  # noqa: F401  (registers everything)
from mmdet.testing import demo_mm_inputs
from mmdet.utils import register_all_modules

register_all_modules()

_PREPROCESSOR = dict(
    type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53],
    std=[58.395, 57.12, 57.375], bgr_to_rgb=True, pad_size_divisor=32)


def tiny_retinanet(width: int = 8, fpn: int = 16, num_classes: int = 10,
                   num_outs: int = 3) -> dict:
    """A RetinaNet small enough for unit tests (strides 8/16/32)."""
    return dict(
        type='RetinaNet',
        data_preprocessor=copy.deepcopy(_PREPROCESSOR),
        backbone=dict(type='ResNet', depth=18, base_channels=width,
                      out_indices=(1, 2, 3), frozen_stages=-1,
                      norm_cfg=dict(type='BN'), norm_eval=False, style='pytorch'),
        neck=dict(type='FPN', in_channels=[2 * width, 4 * width, 8 * width],
                  out_channels=fpn, start_level=0, num_outs=num_outs),
        bbox_head=dict(
            type='RetinaHead', num_classes=num_classes, in_channels=fpn,
            stacked_convs=1, feat_channels=fpn,
            anchor_generator=dict(type='AnchorGenerator', octave_base_scale=2,
                                  scales_per_octave=1, ratios=[1.0],
                                  strides=[8, 16, 32, 64, 128][:num_outs]),
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0] * 4,
                            target_stds=[1.0] * 4),
            loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0,
                          alpha=0.25, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
        train_cfg=dict(
            assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4,
                          min_pos_iou=0, ignore_iof_thr=-1),
            sampler=dict(type='PseudoSampler'), allowed_border=-1, pos_weight=-1,
            debug=False),
        test_cfg=dict(nms_pre=100, min_bbox_size=0, score_thr=0.05,
                      nms=dict(type='nms', iou_threshold=0.5), max_per_img=20))


def tiny_faster_rcnn(width: int = 8, fpn: int = 16, num_classes: int = 10) -> dict:
    """MMDetection's Faster R-CNN R50-FPN layout, shrunk."""
    from mmkd_plugins.distillers.detection_distiller import build_detector_cfg
    model = build_detector_cfg('mmdet::_base_/models/faster-rcnn_r50_fpn.py', 'student')
    model.data_preprocessor = copy.deepcopy(_PREPROCESSOR)
    model.backbone.update(depth=18, base_channels=width, init_cfg=None, norm_eval=False)
    model.neck.update(in_channels=[width, 2 * width, 4 * width, 8 * width], out_channels=fpn)
    model.rpn_head.update(in_channels=fpn, feat_channels=fpn)
    model.roi_head.bbox_roi_extractor.out_channels = fpn
    model.roi_head.bbox_head.update(in_channels=fpn, fc_out_channels=32, num_classes=num_classes)
    model.train_cfg.rpn_proposal.update(nms_pre=200, max_per_img=100)
    model.train_cfg.rcnn.sampler.num = 64
    model.test_cfg.rpn.update(nms_pre=200, max_per_img=100)
    return model.to_dict()


def fgd_spec(**loss_kwargs) -> dict:
    return dict(student='neck', teacher='neck', loss=dict(type='FGDLoss', **loss_kwargs))


def distiller_cfg(student=None, teacher=None, losses=None, teacher_ckpt=None, **kwargs) -> dict:
    """A DetectionDistiller config with a random teacher by default."""
    return dict(
        type='DetectionDistiller',
        student=student or tiny_retinanet(width=8, fpn=16),
        teacher=teacher or tiny_retinanet(width=16, fpn=32),
        teacher_ckpt=teacher_ckpt,
        distill_losses={'loss_fgd': fgd_spec()} if losses is None else losses,
        probe_size=(64, 64), **kwargs)


def data_free_cfg(losses=None, **data_free):
    """A tiny DataFreeDistiller: R18-w8 student, R18-w16 teacher, 64 px images."""
    opts = dict(generator=dict(type='ImageGenerator', nz=16, ngf=4, img_size=32, init_size=8,
                               out_size=64), student_steps=2)
    opts.update(data_free)
    return dict(
        type='DataFreeDistiller', student=tiny_retinanet(width=8, fpn=16),
        teacher=tiny_retinanet(width=16, fpn=32), teacher_ckpt=None, probe_size=(64, 64),
        distill_losses=losses if losses is not None else dict(
            loss_cls=dict(student='bbox_head.retina_cls', teacher='bbox_head.retina_cls',
                          loss=dict(type='DenseL1Loss')),
            loss_pkd=dict(student='neck', teacher='neck', loss=dict(type='PKDLoss'))),
        data_free=opts)


def make_batch(model, batch_size=2, size=(64, 64), num_items=None, training=True, seed=0):
    """A preprocessed batch of random images with random boxes."""
    packed = demo_mm_inputs(batch_size=batch_size, image_shapes=(3, *size),
                            num_items=num_items or [3] * batch_size, num_classes=10)
    torch.manual_seed(seed)
    return model.data_preprocessor(packed, training)


def group_batch(model, groups, seed=0):
    """``make_batch`` whose images belong to ``groups`` (one name per image)."""
    data = make_batch(model, batch_size=len(groups), seed=seed)
    for sample, group in zip(data['data_samples'], groups):
        sample.set_metainfo({'group': group})
    return data


def fake_group_steps(monkeypatch, group_losses, calls=None):
    """Make every distiller's step return known losses, for the group
    objectives: ``group_losses[g]`` = (detection, distillation), as
    ``loss_cls`` (two halves) and ``loss_fgd``, both times a parameter equal
    to 1 (returned) so that the objective has a gradient. ``calls`` collects
    (images, img_ids) per step."""
    from mmkd_plugins.distillers import DetectionDistiller
    weight = torch.nn.Parameter(torch.ones(()))

    def step(self, batch, features=None):
        groups = {s.metainfo['group'] for s in batch.data_samples}
        assert len(groups) == 1, groups  # one call per group
        det, dist = group_losses[groups.pop()]
        if calls is not None:
            calls.append((batch.inputs.shape[0],
                          [s.metainfo['img_id'] for s in batch.data_samples]))
        return {'loss_cls': [torch.tensor(det / 2) * weight, torch.tensor(det / 2) * weight],
                'loss_fgd': torch.tensor(dist) * weight, 'acc': torch.tensor(50.0)}

    monkeypatch.setattr(DetectionDistiller, 'step', step)
    return weight


@pytest.fixture(scope='session')
def digits_root(tmp_path_factory):
    """A 16/8-image, 64x64 version of the demo data, generated once."""
    from mmkd_plugins.synthetic.digits import generate_digits_detection
    root = str(tmp_path_factory.mktemp('digits'))
    generate_digits_detection(root, splits=(('train', 16), ('val', 8)), image_size=64,
                              digits_per_image=(1, 2), scale_range=(14, 28), seed=0)
    return root


def runner_cfg(data_root: str, work_dir: str, model: dict, max_iters: int = 4,
               checkpoint_interval: int = 2, val: bool = False, **extra) -> Config:
    """A complete training config on the tiny digits data."""
    from mmkd_plugins.synthetic.digits import dataset_meta
    # Resize is an identity on the 64x64 images, but predict() needs the
    # scale_factor it records to rescale boxes.
    pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True),
                dict(type='Resize', scale=(64, 64), keep_ratio=True),
                dict(type='PackDetInputs')]

    def dataset(split):
        return dict(type='CocoDataset', data_root=data_root, metainfo=dataset_meta(),
                    ann_file=f'annotations/{split}.json', data_prefix=dict(img=f'{split}/'),
                    pipeline=pipeline, test_mode=split != 'train')

    cfg = dict(
        model=model,
        work_dir=work_dir,
        default_scope='mmdet',
        train_dataloader=dict(batch_size=2, num_workers=0,
                              sampler=dict(type='InfiniteSampler', shuffle=True, seed=0),
                              dataset=dataset('train')),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters,
                       val_interval=max_iters + 1),
        optim_wrapper=dict(type='OptimWrapper', optimizer=dict(type='SGD', lr=0.01, momentum=0.9)),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=checkpoint_interval),
            logger=dict(type='LoggerHook', interval=1)),
        log_processor=dict(by_epoch=False),
        randomness=dict(seed=0),
        env_cfg=dict(dist_cfg=dict(backend='gloo')),
        log_level='WARNING',
        visualizer=dict(type='DetLocalVisualizer', vis_backends=[dict(type='LocalVisBackend')]),
    )
    if val:
        cfg.update(
            val_dataloader=dict(batch_size=2, num_workers=0,
                                sampler=dict(type='DefaultSampler', shuffle=False),
                                dataset=dataset('val')),
            val_cfg=dict(type='ValLoop'),
            val_evaluator=dict(type='CocoMetric', metric='bbox',
                               ann_file=osp.join(data_root, 'annotations/val.json')))
    cfg.update(extra)
    return Config(cfg)


def load_json(path: str):
    """The JSON document at ``path``."""
    with open(path) as f:
        return json.load(f)


def file_tree(root: str) -> dict:
    """``{relative path: bytes}`` of every file under ``root`` (to compare
    generated datasets byte for byte)."""
    out = {}
    for d, _, files in os.walk(root):
        for f in files:
            with open(osp.join(d, f), 'rb') as fh:
                out[osp.relpath(osp.join(d, f), root)] = fh.read()
    return out


def data_free_runner_cfg(work_dir: str, max_iters: int, name: str, **extra) -> Config:
    """A complete data-free training config on tiny models, no validation."""
    cfg = dict(
        model=data_free_cfg(),
        work_dir=work_dir,
        default_scope='mmdet',
        train_dataloader=dict(batch_size=3, num_workers=0,
                              sampler=dict(type='InfiniteSampler', shuffle=False),
                              dataset=dict(type='DataFreeDataset',
                                           metainfo=dict(classes=tuple(map(str, range(10)))),
                                           length=10)),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=max_iters, val_interval=100),
        optim_wrapper=dict(
            constructor='DataFreeOptimWrapperConstructor',
            student=dict(type='OptimWrapper',
                         optimizer=dict(type='SGD', lr=0.02, momentum=0.9),
                         clip_grad=dict(max_norm=10)),
            generator=dict(type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-2))),
        param_scheduler=dict(
            student=[dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=3)],
            generator=[]),
        default_hooks=dict(
            checkpoint=dict(type='CheckpointHook', by_epoch=False, interval=2),
            logger=dict(type='LoggerHook', interval=1)),
        custom_hooks=[dict(type='GeneratedImagesHook', points=3, num_images=2)],
        log_processor=dict(by_epoch=False),
        randomness=dict(seed=0),
        log_level='WARNING',
        experiment_name=name,
    )
    cfg.update(extra)
    return Config(cfg)


@pytest.fixture
def fast_runner(monkeypatch):
    """Speed only: one intra-op thread (the machine is shared, and two threads
    fighting for two busy cores are ~10x slower on these tiny models) and no
    yapf formatting of the config text mmengine logs, dumps and puts in every
    checkpoint (~1 s each); the text stays valid, unformatted Python."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    monkeypatch.setattr('mmengine.config.config.FormatCode',
                        lambda text, **kwargs: (text, None))
    yield
    torch.set_num_threads(threads)


_TOOLS = osp.join(osp.dirname(osp.dirname(osp.abspath(__file__))), 'tools')


@pytest.fixture
def load_tool():
    """``load_tool('benchmark_speed')`` -> the module ``tools/benchmark_speed.py``
    (the scripts under tools/ are not a package)."""
    import importlib.util

    def load(name: str):
        spec = importlib.util.spec_from_file_location(name, osp.join(_TOOLS, f'{name}.py'))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    return load
