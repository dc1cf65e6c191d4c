"""tools/loss_scale.py: per-entry loss values and student gradient norms."""
import pytest
import torch
from conftest import distiller_cfg, fgd_spec, make_batch, runner_cfg, tiny_retinanet

from mmdet.registry import MODELS


def _distiller(loss_weight):
    torch.manual_seed(0)  # same initialisation for every call
    model = MODELS.build(distiller_cfg(losses={'loss_fgd': fgd_spec(loss_weight=loss_weight)}))
    return model.train()


def test_gradient_norm_follows_the_loss_weight(load_tool):
    """Ten times the FGD weight: ten times its value and gradient norm, the
    detection entries unchanged."""
    tool = load_tool('loss_scale')
    runs = []
    for weight in (1.0, 10.0):
        model = _distiller(weight)
        runs.append(tool.loss_scale(model, [make_batch(model)]))
    one, ten = runs
    assert list(one) == ['loss_cls', 'loss_bbox', 'loss_fgd', 'total']
    (fgd1,), (fgd10,) = one['loss_fgd'], ten['loss_fgd']
    assert fgd1['grad'] > 0
    assert fgd10['value'] == pytest.approx(10 * fgd1['value'], rel=1e-5)
    assert fgd10['grad'] == pytest.approx(10 * fgd1['grad'], rel=1e-4)
    for name in ('loss_cls', 'loss_bbox'):
        assert ten[name][0]['value'] == pytest.approx(one[name][0]['value'], rel=1e-5)
    # A neck loss pulls on the neck and the backbone, never on the head; the
    # module norms make up the overall one.
    assert fgd1['bbox_head'] == 0 and fgd1['neck'] > 0 and fgd1['backbone'] > 0
    assert sum(fgd1[m] ** 2 for m in ('backbone', 'neck', 'bbox_head')) == \
        pytest.approx(fgd1['grad'] ** 2, rel=1e-5)


def test_total_is_what_clip_grad_sees(load_tool):
    """The total row is the gradient norm of the summed loss on the student's
    parameters, as backward() + clip_grad_norm_ compute it; the teacher and
    the FGD adapters are left out."""
    tool = load_tool('loss_scale')
    model = _distiller(1.0)
    batch = make_batch(model)
    (row,) = tool.loss_scale(model, [batch])['total']
    model.zero_grad()
    losses = model.loss(batch['inputs'], batch['data_samples'])
    loss = sum(sum(v) if isinstance(v, list) else v for v in losses.values())
    loss.backward()
    assert row['value'] == pytest.approx(loss.item(), rel=1e-5)
    assert row['grad'] == pytest.approx(float(torch.nn.utils.clip_grad_norm_(
        model.student.parameters(), float('inf'))), rel=1e-4)
    assert all(p.grad is None for p in model.teacher.parameters())


def test_plain_detector_and_bad_input(load_tool):
    tool = load_tool('loss_scale')
    torch.manual_seed(0)
    detector = MODELS.build(tiny_retinanet()).train()
    stats = tool.loss_scale(detector, [make_batch(detector)])
    assert list(stats) == ['loss_cls', 'loss_bbox', 'total']
    with pytest.raises(ValueError, match='no batches'):
        tool.loss_scale(detector, [])
    for p in detector.parameters():
        p.requires_grad_(False)
    with pytest.raises(ValueError, match='no trainable parameters'):
        tool.loss_scale(detector, [make_batch(detector)])


def test_main_prints_the_table(load_tool, digits_root, tmp_path, fast_runner, capsys):
    tool = load_tool('loss_scale')
    config = tmp_path / 'fgd.py'
    runner_cfg(digits_root, str(tmp_path), distiller_cfg()).dump(str(config))
    tool.main([str(config), '--batches', '2', '--cfg-options',
               'model.distill_losses.loss_fgd.loss.loss_weight=3.0'])
    out = capsys.readouterr().out
    assert '2 training batches' in out
    rows = {line.split('|')[1].strip(): line for line in out.splitlines()
            if line.startswith('| ')}
    assert set(rows) == {'entry', 'loss_cls', 'loss_bbox', 'loss_fgd', 'total'}
    assert rows['entry'].count('|') == 7  # entry, value, overall, 3 modules
    assert 'in bbox_head' in rows['entry']
    assert rows['loss_fgd'].split('|')[-2].strip() == '0'  # a neck loss: no head gradient


def test_main_refuses_bad_arguments(load_tool, digits_root, tmp_path, fast_runner, capsys):
    tool = load_tool('loss_scale')
    config = tmp_path / 'student.py'
    runner_cfg(digits_root, str(tmp_path), tiny_retinanet()).dump(str(config))
    with pytest.raises(SystemExit):
        tool.main([str(config), '--batches', '0'])
    assert '--batches must be at least 1' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.main([str(tmp_path / 'nope.py')])
    assert 'no such config' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.main([str(config), '--teacher-ckpt', str(tmp_path / 'teacher.pth')])
    assert 'not a distiller config' in capsys.readouterr().err
    distill = tmp_path / 'fgd.py'
    runner_cfg(digits_root, str(tmp_path), distiller_cfg()).dump(str(distill))
    with pytest.raises(SystemExit):
        tool.main([str(distill), '--teacher-ckpt', str(tmp_path / 'teacher.pth')])
    assert 'teacher.pth: no such file' in capsys.readouterr().err


def _fgd_row(out):
    (line,) = [ln for ln in out.splitlines() if ln.startswith('| loss_fgd ')]
    return line


def test_main_starts_from_a_training_checkpoint(load_tool, digits_root, tmp_path, fast_runner,
                                                capsys):
    """--checkpoint measures the trained student (the FGD loss has moved);
    a checkpoint of another model is refused, naming the mismatch."""
    from mmengine.runner import Runner
    tool = load_tool('loss_scale')
    cfg = runner_cfg(digits_root, str(tmp_path / 'run'), distiller_cfg(), max_iters=2)
    config = tmp_path / 'fgd.py'
    cfg.dump(str(config))
    Runner.from_cfg(cfg).train()
    ckpt = str(tmp_path / 'run' / 'iter_2.pth')
    tool.main([str(config), '--batches', '1'])
    fresh = capsys.readouterr().out
    tool.main([str(config), '--batches', '1', '--checkpoint', ckpt])
    trained = capsys.readouterr().out
    assert f'the student of {ckpt}' in trained
    assert _fgd_row(trained) != _fgd_row(fresh)

    student = tmp_path / 'student.py'
    runner_cfg(digits_root, str(tmp_path), tiny_retinanet()).dump(str(student))
    with pytest.raises(SystemExit):
        tool.main([str(student), '--checkpoint', ckpt])
    assert 'does not match' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        tool.main([str(config), '--checkpoint', str(tmp_path / 'missing.pth')])
    assert 'missing.pth: no such file' in capsys.readouterr().err
