"""DetectionDistiller: modes, frozen teacher, adapters, build-time errors."""
import copy

import pytest
import torch
from conftest import (distiller_cfg, fgd_spec, make_batch, tiny_faster_rcnn,
                      tiny_retinanet)

from mmdet.registry import MODELS


def build(**kwargs):
    return MODELS.build(distiller_cfg(**kwargs))


def snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize('make_model', [tiny_retinanet, tiny_faster_rcnn],
                         ids=['one-stage', 'two-stage'])
def test_loss_mode_trains_student_only(make_model):
    model = build(student=make_model(width=8, fpn=16), teacher=make_model(width=16, fpn=32),
                  losses={'loss_fgd': fgd_spec(alpha_fg=1.0, beta_bg=1.0)})
    model.train()
    teacher_before = snapshot(model.teacher)
    optim = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(2):
        data = make_batch(model, seed=step)
        losses = model(**data, mode='loss')
        assert 'loss_fgd' in losses and torch.isfinite(losses['loss_fgd'])
        assert losses['loss_fgd'] > 0
        total, _ = model.parse_losses(losses)
        optim.zero_grad()
        total.backward()
        optim.step()
    # Gradients reached the student and the adapters, never the teacher.
    assert model.student.backbone.layer2[0].conv1.weight.grad.abs().sum() > 0
    assert model.student.neck.fpn_convs[0].conv.weight.grad.abs().sum() > 0
    assert all(a.weight.grad.abs().sum() > 0 for a in model.adapters['loss_fgd'])
    assert all(p.grad is None for p in model.teacher.parameters())
    # Weights and BatchNorm statistics of the teacher did not move.
    for key, value in snapshot(model.teacher).items():
        assert torch.equal(value, teacher_before[key]), key
    assert not model.teacher.training


def test_teacher_is_not_a_submodule():
    model = build()
    model.train()
    assert not model.teacher.training
    names = [n for n, _ in model.named_parameters()]
    assert names and not any(n.startswith('teacher') for n in names)
    assert not any(k.startswith('teacher') for k in model.state_dict())
    teacher_ids = {id(p) for p in model.teacher.parameters()}
    assert not teacher_ids & {id(p) for p in model.parameters()}
    # .to() reaches the teacher although it is outside the module tree.
    model.to(torch.float64)
    assert next(model.teacher.parameters()).dtype == torch.float64


def test_teacher_runs_only_up_to_the_neck():
    model = build()
    called = []
    model.teacher.bbox_head.register_forward_hook(lambda *a: called.append('head'))
    model.teacher.neck.register_forward_hook(lambda *a: called.append('neck'))
    model.train()
    model(**make_batch(model), mode='loss')
    assert called == ['neck']


def test_predict_and_tensor_modes_run_the_student():
    model = build().eval()
    data = make_batch(model, training=False)
    ours = model(**copy.deepcopy(data), mode='predict')
    alone = model.student.predict(data['inputs'], copy.deepcopy(data['data_samples']))
    for a, b in zip(ours, alone):
        assert torch.equal(a.pred_instances.bboxes, b.pred_instances.bboxes)
    with model.teacher_predicts():
        teacher_out = model(**copy.deepcopy(data), mode='predict')
    assert not torch.equal(teacher_out[0].pred_instances.scores, ours[0].pred_instances.scores)
    tensors = model(data['inputs'], mode='tensor')
    student_tensors = model.student._forward(data['inputs'])
    assert torch.equal(tensors[0][0], student_tensors[0][0])


def test_shares_the_student_preprocessor():
    model = build()
    assert model.data_preprocessor is model.student.data_preprocessor


def test_head_logits_recorded_per_level():
    losses = {'loss_logits': dict(student='bbox_head.retina_cls', teacher='bbox_head.retina_cls',
                                  loss=dict(type='FeatureMSELoss'))}
    model = build(losses=losses)
    assert 'loss_logits' not in model.adapters  # same classes and anchors: no adapter
    model.train()
    out = model(**make_batch(model), mode='loss')
    assert out['loss_logits'] > 0


def test_in_channels_and_num_levels_filled_from_probe():
    model = build()
    fgd = model.distill_losses['loss_fgd']
    assert fgd.in_channels == 32 and fgd.num_levels == 3


def test_levels_selects_a_subset():
    model = build(losses={'loss_fgd': dict(fgd_spec(), levels=[0, 2])})
    assert model.distill_losses['loss_fgd'].num_levels == 2
    assert len(model.adapters['loss_fgd']) == 2


def test_stopped_distillation_keeps_parameters_in_graph():
    model = build()
    model.train()
    model.distill_enabled = False
    out = model(**make_batch(model), mode='loss')
    assert out['loss_fgd'].item() == 0
    out['loss_fgd'].backward()
    grads = [p.grad for p in model.distill_losses.parameters()]
    assert grads and all(g is not None and g.abs().sum() == 0 for g in grads)


def test_loss_scale_multiplies_the_distillation_loss():
    model = build()
    model.train()
    data = make_batch(model)
    full = model(**copy.deepcopy(data), mode='loss')['loss_fgd']
    model.distill_loss_scale = 0.25
    scaled = model(**copy.deepcopy(data), mode='loss')['loss_fgd']
    assert torch.allclose(scaled, full * 0.25)


def test_runs_under_autocast():
    model = build()
    model.train()
    with torch.autocast('cpu', dtype=torch.bfloat16):
        out = model(**make_batch(model), mode='loss')
    assert torch.isfinite(out['loss_fgd']) and out['loss_fgd'].dtype == torch.float32


def test_checkpoint_of_a_trained_teacher_loads(tmp_path):
    from mmengine.logging import MessageHub
    teacher = MODELS.build(tiny_retinanet(width=16, fpn=32))
    hub = MessageHub.get_instance('teacher_run')
    hub.update_scalar('train/loss', 1.5)
    path = str(tmp_path / 'teacher.pth')
    # What mmengine's CheckpointHook writes: HistoryBuffers and numpy inside.
    torch.save({'state_dict': teacher.state_dict(), 'message_hub': hub.state_dict(),
                'meta': {'epoch': 1}}, path)
    with pytest.raises(Exception, match='Weights only load failed'):
        torch.load(path)  # the torch >= 2.6 default that breaks mmengine
    model = build(teacher_ckpt=path)
    for key, value in teacher.state_dict().items():
        assert torch.equal(model.teacher.state_dict()[key], value)


# -- build-time errors, each naming the offending key ------------------------

def test_error_teacher_ckpt_missing_key():
    cfg = distiller_cfg()
    del cfg['teacher_ckpt']
    with pytest.raises(ValueError, match='teacher_ckpt is required'):
        MODELS.build(cfg)


def test_error_teacher_ckpt_file_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match='teacher_ckpt: checkpoint .*nope.pth'):
        build(teacher_ckpt=str(tmp_path / 'nope.pth'))


def test_error_teacher_ckpt_unreadable(tmp_path):
    path = tmp_path / 'broken.pth'
    path.write_bytes(b'not a checkpoint at all')
    with pytest.raises(ValueError, match='teacher_ckpt: cannot read'):
        build(teacher_ckpt=str(path))


def test_error_teacher_ckpt_of_another_model(tmp_path):
    other = MODELS.build(tiny_retinanet(width=8, fpn=16))
    path = str(tmp_path / 'other.pth')
    torch.save({'state_dict': other.state_dict()}, path)
    with pytest.raises(ValueError, match='does not match the teacher model'):
        build(teacher_ckpt=path)


def test_error_unknown_module_name():
    spec = dict(fgd_spec(), student='nek')
    with pytest.raises(ValueError, match=r"distill_losses.loss_fgd.student: the student has no "
                                         r"module named 'nek'.*backbone, neck, bbox_head"):
        build(losses={'loss_fgd': spec})


def test_error_unknown_spec_key():
    with pytest.raises(ValueError, match=r"distill_losses.loss_fgd: unknown key\(s\) \['weight'\]"):
        build(losses={'loss_fgd': dict(fgd_spec(), weight=2.0)})


def test_error_unknown_loss_argument():
    with pytest.raises(ValueError, match=r"loss_fgd.loss: FGDLoss has no argument\(s\) \['alpha'\]"):
        build(losses={'loss_fgd': fgd_spec(alpha=1.0)})


def test_error_unknown_loss_type():
    spec = dict(student='neck', teacher='neck', loss=dict(type='NoSuchLoss'))
    with pytest.raises(ValueError, match="loss_fgd.loss.type: unknown loss 'NoSuchLoss'"):
        build(losses={'loss_fgd': spec})


def test_error_channel_mismatch_without_adapter():
    with pytest.raises(ValueError, match='level 0 has 16 student channels vs 32 teacher '
                                         'channels and adapter=None'):
        build(losses={'loss_fgd': dict(fgd_spec(), adapter=None)})


def test_error_level_count_mismatch():
    with pytest.raises(ValueError, match="gives 3 levels but the teacher's 'neck' gives 4"):
        build(teacher=tiny_retinanet(width=16, fpn=32, num_outs=4))


def test_error_spatial_mismatch():
    # The teacher's backbone levels are strides 8/16/32, the student's 4/8/16.
    student = tiny_retinanet()
    student['backbone']['out_indices'] = (0, 1, 2)
    student['neck']['in_channels'] = [8, 16, 32]
    spec = dict(student='backbone', teacher='backbone', loss=dict(type='FeatureMSELoss'))
    with pytest.raises(ValueError, match='level 0 shapes differ beyond channels'):
        build(student=student, losses={'loss_feat': spec})


def test_error_in_channels_disagrees_with_teacher():
    with pytest.raises(ValueError, match=r"loss_fgd.loss.in_channels=64 but the teacher's 'neck' gives 32"):
        build(losses={'loss_fgd': fgd_spec(in_channels=64)})


def test_error_class_count_mismatch_on_head_outputs():
    spec = dict(student='bbox_head.retina_cls', teacher='bbox_head.retina_cls',
                loss=dict(type='FeatureMSELoss'))
    with pytest.raises(ValueError, match='student num_classes=10, teacher num_classes=5'):
        build(teacher=tiny_retinanet(width=16, fpn=16, num_classes=5), losses={'loss_logits': spec})


def test_error_roi_head_module_is_refused():
    spec = dict(student='roi_head.bbox_head', teacher='roi_head.bbox_head',
                loss=dict(type='FeatureMSELoss'))
    with pytest.raises(ValueError, match='RoI heads need proposals'):
        build(student=tiny_faster_rcnn(), teacher=tiny_faster_rcnn(), losses={'loss_roi': spec})


def test_error_empty_batch():
    model = build()
    data = make_batch(model)
    with pytest.raises(ValueError, match='empty batch'):
        model.loss(data['inputs'][:0], [])


def test_init_student_from_teacher_copies_after_init():
    model = build(teacher=tiny_retinanet(width=16, fpn=16),
                  losses={'loss_fgd': fgd_spec()}, init_student_from_teacher=['bbox_head'])
    model.init_weights()
    for key, value in model.teacher.bbox_head.state_dict().items():
        assert torch.equal(model.student.bbox_head.state_dict()[key], value), key
    assert not torch.equal(model.student.neck.fpn_convs[0].conv.weight[:, :8],
                           model.teacher.neck.fpn_convs[0].conv.weight[:, :8])


def test_error_init_student_from_teacher_with_other_shapes():
    with pytest.raises(ValueError, match=r"init_student_from_teacher: 'bbox_head': student "
                                         r"bbox_head.cls_convs.0.conv.weight \(16, 16, 3, 3\) vs teacher \(32, 32, 3, 3\)"):
        build(init_student_from_teacher=['bbox_head'])


@pytest.mark.skipif(not torch.cuda.is_available(),
                    reason="mmengine's AmpOptimWrapper (--amp) needs CUDA")
def test_amp_train_step_on_cuda():
    from mmengine.optim import AmpOptimWrapper
    model = build().cuda().train()
    optim = AmpOptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.01))
    from mmdet.testing import demo_mm_inputs
    raw = demo_mm_inputs(batch_size=2, image_shapes=(3, 64, 64), num_items=[3, 3], num_classes=10)
    log_vars = model.train_step(raw, optim)  # preprocesses on the GPU itself
    assert torch.isfinite(log_vars['loss_fgd']) and log_vars['loss_fgd'] > 0
    assert all(p.grad is None for p in model.teacher.parameters())
