"""export_student: a distillation run becomes a plain MMDetection model that
loads and predicts identically without mmkd_plugins."""
import hashlib
import os
import os.path as osp
import re
import subprocess
import sys

import mmcv
import numpy as np
import pytest
import torch
from conftest import distiller_cfg, tiny_retinanet
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.logging import MessageHub

from mmdet.registry import MODELS
from mmkd_plugins.export import export_student

CLASSES = tuple(str(i) for i in range(10))
TEST_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(64, 64), keep_ratio=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))]


def child_env():
    return dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1')


@pytest.fixture
def one_thread():
    """The subprocesses run single-threaded; so does the reference here."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def write_config(path, model):
    Config(dict(
        model=model,
        default_scope='mmdet',
        custom_imports=dict(imports=['mmkd_plugins'], allow_failed_imports=False),
        custom_hooks=[dict(type='DistillStopHook', stop_iter=10),
                      dict(type='CheckInvalidLossHook', interval=50)],
        test_dataloader=dict(batch_size=1, num_workers=0,
                             sampler=dict(type='DefaultSampler', shuffle=False),
                             dataset=dict(type='CocoDataset', data_root='data/',
                                          metainfo=dict(classes=CLASSES),
                                          ann_file='val.json', data_prefix=dict(img='val/'),
                                          test_mode=True, pipeline=TEST_PIPELINE)),
    )).dump(path)
    return path


def save_training_checkpoint(path, state_dict):
    """A checkpoint as mmengine's CheckpointHook writes it."""
    hub = MessageHub.get_instance('export_ckpt')
    hub.update_scalar('train/loss', np.float32(1.25))
    torch.save(dict(meta=dict(seed=np.int64(0), epoch=0, iter=12,
                              dataset_meta=dict(classes=CLASSES)),
                    state_dict=state_dict, message_hub=hub.state_dict()), path)
    return path


@pytest.fixture(scope='module')
def distillation(tmp_path_factory):
    """A distillation config and a training checkpoint of it whose student
    gives confident, varied predictions."""
    root = tmp_path_factory.mktemp('export')
    # FPN widths differ, so the checkpoint also holds adapter weights.
    model_cfg = distiller_cfg(student=tiny_retinanet(width=8, fpn=16),
                              teacher=tiny_retinanet(width=16, fpn=32))
    cfg_path = write_config(str(root / 'fgd_tiny.py'), model_cfg)
    torch.manual_seed(0)
    distiller = MODELS.build(model_cfg)
    with torch.no_grad():
        # Random classification logits around 0 instead of the -4.6 prior,
        # so that plenty of boxes pass score_thr.
        cls_conv = distiller.student.bbox_head.retina_cls
        cls_conv.bias.normal_(0, 0.5)
        distiller.student.backbone.bn1.running_mean.normal_()  # buffers too
    ckpt_path = save_training_checkpoint(str(root / 'iter_12.pth'), distiller.state_dict())
    assert any(k.startswith('adapters.loss_fgd.') for k in distiller.state_dict())
    distiller.eval()
    return dict(root=root, config=cfg_path, checkpoint=ckpt_path, model=distiller)


def test_export_loads_and_predicts_without_mmkd_plugins(distillation, tmp_path, one_thread):
    out = export_student(distillation['config'], distillation['checkpoint'], str(tmp_path))
    assert out['checkpoint'] == str(tmp_path / 'fgd_tiny_student.pth')
    assert out['config'] == str(tmp_path / 'fgd_tiny_student.py')

    # The checkpoint is plain data: torch's weights_only loader reads it.
    exported = torch.load(out['checkpoint'], weights_only=True)
    student = distillation['model'].student
    assert exported['state_dict'].keys() == student.state_dict().keys()
    for key, value in student.state_dict().items():
        assert torch.equal(exported['state_dict'][key], value), key
    assert exported['meta']['dataset_meta'] == dict(classes=list(CLASSES))
    assert exported['meta']['exported_from']['iter'] == 12
    assert out['sha256'] == hashlib.sha256(open(out['checkpoint'], 'rb').read()).hexdigest()

    # The config is a plain detector config.
    text = open(out['config']).read()
    assert 'mmkd_plugins' not in text and 'Distill' not in text
    cfg = Config.fromfile(out['config'])
    assert 'custom_imports' not in cfg
    assert cfg.model.type == 'RetinaNet' and cfg.model.backbone.base_channels == 8
    assert [h['type'] for h in cfg.custom_hooks] == ['CheckInvalidLossHook']
    assert cfg.load_from is None and cfg.resume is False

    # A generated image, predicted in a process where mmkd_plugins cannot be
    # imported at all ...
    rng = np.random.default_rng(0)
    img = str(tmp_path / 'image.png')
    mmcv.imwrite(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8), img)
    result_path = str(tmp_path / 'result.pth')
    code = f"""
import sys
sys.modules['mmkd_plugins'] = None
try:
    import mmkd_plugins
except ImportError:
    pass
else:
    raise SystemExit('mmkd_plugins is importable')
import torch
from mmdet.apis import inference_detector, init_detector
model = init_detector({out['config']!r}, {out['checkpoint']!r}, device='cpu')
assert model.dataset_meta['classes'] == {list(CLASSES)!r}, model.dataset_meta
pred = inference_detector(model, {img!r}).pred_instances
assert not any(m.startswith('mmkd_plugins') for m in sys.modules if sys.modules[m])
torch.save(dict(bboxes=pred.bboxes, scores=pred.scores, labels=pred.labels), {result_path!r})
"""
    proc = subprocess.run([sys.executable, '-c', code], cwd=str(tmp_path), env=child_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    plain = torch.load(result_path, weights_only=True)

    # ... matches the distiller's own predictions here (same image, same
    # test pipeline, DetectionDistiller.predict).
    data = Compose(TEST_PIPELINE)(dict(img_path=img, img_id=0))
    with torch.no_grad():
        ours = distillation['model'].test_step(
            dict(inputs=[data['inputs']], data_samples=[data['data_samples']]))[0].pred_instances
    assert len(ours.scores) >= 5  # a real comparison, not two empty lists
    assert torch.equal(plain['labels'], ours.labels)
    torch.testing.assert_close(plain['scores'], ours.scores, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(plain['bboxes'], ours.bboxes, atol=1e-3, rtol=1e-5)


def test_publish_names_file_by_its_sha256(distillation, tmp_path):
    """The hash naming of ``--publish``; the CLI, which also writes the zoo
    entry from the run's logs, is tested in tests/test_zoo/test_publish.py."""
    out_dir = tmp_path / 'published'
    out = export_student(distillation['config'], distillation['checkpoint'], str(out_dir),
                         publish=True)
    pths = sorted(os.listdir(out_dir))
    assert len(pths) == 2 and pths[1] == 'fgd_tiny_student.py', pths
    match = re.fullmatch(r'fgd_tiny_student-([0-9a-f]{8})\.pth', pths[0])
    assert match, pths
    path = out_dir / pths[0]
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert match.group(1) == digest[:8]
    assert out == {'checkpoint': str(path), 'config': str(out_dir / pths[1]), 'sha256': digest}
    torch.load(str(path), weights_only=True)


def test_refuses_a_config_without_distiller(tmp_path, distillation):
    cfg_path = str(tmp_path / 'plain.py')
    Config(dict(model=tiny_retinanet())).dump(cfg_path)
    with pytest.raises(ValueError, match="model.type is 'RetinaNet', not DetectionDistiller"):
        export_student(cfg_path, distillation['checkpoint'], str(tmp_path / 'out'))
    assert not osp.exists(tmp_path / 'out')


def test_refuses_a_checkpoint_without_student_weights(tmp_path, distillation):
    plain = MODELS.build(tiny_retinanet())
    ckpt = save_training_checkpoint(str(tmp_path / 'retinanet.pth'), plain.state_dict())
    with pytest.raises(ValueError, match=r'retinanet.pth holds no student weights '
                                         r'\(keys "student.\*"\)'):
        export_student(distillation['config'], ckpt, str(tmp_path / 'out'))
    assert not osp.exists(tmp_path / 'out')
