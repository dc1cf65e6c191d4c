"""Tests of FGDLoss and its pure pieces."""
import copy
import math

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from mmdet.registry import MODELS
from mmdet.structures import DetDataSample
from mmdet.structures.bbox import HorizontalBoxes
from mmkd_plugins.losses import (FGDLoss, GlobalContextBlock, boxes_to_cells,
                                 fgd_feature_loss, fgd_mask_loss, fgd_masks,
                                 fgd_relation_loss, spatial_channel_attention)

INPUT_HW = (32, 32)
# Image 0: two overlapping boxes; image 1: no boxes.
BOXES = [[[0., 0., 16., 8.], [8., 0., 12., 4.], [20., 20., 31., 29.]], []]


def sample(boxes, input_hw=INPUT_HW, box_type=None):
    ds = DetDataSample(
        metainfo=dict(batch_input_shape=input_hw, img_shape=input_hw))
    inst = InstanceData()
    bboxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    inst.bboxes = bboxes if box_type is None else box_type(bboxes)
    inst.labels = torch.zeros(len(bboxes), dtype=torch.long)
    ds.gt_instances = inst
    return ds


def samples(boxes_list=BOXES, **kwargs):
    return [sample(b, **kwargs) for b in boxes_list]


def pair(shape=(2, 4, 4, 4), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g), torch.randn(*shape, generator=g)


def randomize_(module, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return module


# ----------------------------------------------------------- references
def explicit_masks(boxes_list, in_hw, feat_hw):
    h, w = feat_hw
    fg = np.zeros((len(boxes_list), 1, h, w))
    for i, boxes in enumerate(boxes_list):
        for x1, y1, x2, y2 in boxes:
            c0 = min(max(math.floor(x1 / in_hw[1] * w), 0), w - 1)
            c1 = max(min(math.ceil(x2 / in_hw[1] * w), w), c0 + 1)
            r0 = min(max(math.floor(y1 / in_hw[0] * h), 0), h - 1)
            r1 = max(min(math.ceil(y2 / in_hw[0] * h), h), r0 + 1)
            value = 1.0 / ((c1 - c0) * (r1 - r0))
            for r in range(r0, r1):
                for c in range(c0, c1):
                    fg[i, 0, r, c] = max(fg[i, 0, r, c], value)
    bg = np.zeros_like(fg)
    for i in range(len(boxes_list)):
        count = int((fg[i] == 0).sum())
        if count:
            bg[i] = (fg[i] == 0) / count
    return fg, bg


def explicit_attention(feat, temperature):
    f = np.abs(feat.double().numpy())
    n, c, h, w = f.shape
    spatial, channel = np.zeros((n, 1, h, w)), np.zeros((n, c, 1, 1))
    for i in range(n):
        e = np.exp(f[i].mean(axis=0) / temperature)
        spatial[i, 0] = h * w * e / e.sum()
        e = np.exp(f[i].mean(axis=(1, 2)) / temperature)
        channel[i, :, 0, 0] = c * e / e.sum()
    return spatial, channel


def explicit_gc(block, feat):
    f = feat.double().numpy()
    p = {k: v.double().numpy() for k, v in block.state_dict().items()}
    wm, bm = p['context_logits.weight'].reshape(-1), p['context_logits.bias']
    w1 = p['transform.0.weight'][:, :, 0, 0]
    gamma = p['transform.1.weight'].ravel()
    beta = p['transform.1.bias'].ravel()
    w2 = p['transform.3.weight'][:, :, 0, 0]
    out = f.copy()
    for i in range(f.shape[0]):
        logits = np.einsum('c,chw->hw', wm, f[i]) + bm
        a = np.exp(logits - logits.max())
        a /= a.sum()
        ctx = (f[i] * a).sum(axis=(1, 2))
        hid = w1 @ ctx + p['transform.0.bias']
        hid = (hid - hid.mean()) / np.sqrt(hid.var() + 1e-5) * gamma + beta
        out[i] += (w2 @ np.maximum(hid, 0) + p['transform.3.bias'])[:, None,
                                                                       None]
    return out


def explicit_fgd(s, t, boxes_list, temperature, alpha, beta, gamma, lam,
                 weight=None):
    """Full FGD level loss with identity GC blocks (fresh initialisation)."""
    n = s.shape[0]
    fg, bg = explicit_masks(boxes_list, INPUT_HW, s.shape[-2:])
    t_sp, t_ch = explicit_attention(t, temperature)
    s_sp, s_ch = explicit_attention(s, temperature)
    sn, tn = s.double().numpy(), t.double().numpy()
    w = 1.0 if weight is None else weight.double().numpy()
    err = (sn - tn)**2 * t_sp * t_ch * w
    l_fg, l_bg = (err * fg).sum() / n, (err * bg).sum() / n
    l_mask = (np.abs(s_ch - t_ch).sum() + np.abs(s_sp - t_sp).sum()) / n
    l_rela = ((sn - tn)**2).sum() / n
    return alpha * l_fg + beta * l_bg + gamma * l_mask + lam * l_rela


# ----------------------------------------------------------- pure pieces
def test_spatial_channel_attention_matches_explicit():
    f, _ = pair((2, 3, 4, 5))
    for temp in (0.5, 2.0):
        sp, ch = spatial_channel_attention(f, temp)
        assert sp.shape == (2, 1, 4, 5) and ch.shape == (2, 3, 1, 1)
        ref_sp, ref_ch = explicit_attention(f, temp)
        np.testing.assert_allclose(sp.numpy(), ref_sp, rtol=1e-5)
        np.testing.assert_allclose(ch.numpy(), ref_ch, rtol=1e-5)
        # Scaled so that each map averages 1.
        assert torch.allclose(sp.mean(dim=(2, 3)), torch.ones(2, 1))
        assert torch.allclose(ch.mean(dim=1), torch.ones(2, 1, 1))


def test_boxes_to_cells():
    boxes = torch.tensor([
        [0., 0., 16., 8.],  # cols 0-1, row 0
        [30., 30., 30.5, 30.5],  # tiny box: one cell
        [40., 40., 50., 50.],  # outside the image: last cell
        [12., 12., 8., 8.],  # degenerate: one cell
    ])
    x0, x1, y0, y1 = boxes_to_cells(boxes, (32, 32), (4, 4))
    assert x0.tolist() == [0, 3, 3, 1] and x1.tolist() == [2, 4, 4, 2]
    assert y0.tolist() == [0, 3, 3, 1] and y1.tolist() == [1, 4, 4, 2]
    assert x0.dtype == torch.int64


def test_fgd_masks_hand_example():
    fg, bg = fgd_masks(
        [torch.tensor(BOXES[0]), torch.zeros(0, 4)], INPUT_HW, (4, 4))
    expected_fg = torch.zeros(2, 1, 4, 4)
    expected_fg[0, 0, 0, 0] = 0.5  # box 0 covers 2 cells
    expected_fg[0, 0, 0, 1] = 1.0  # box 1 (1 cell) wins the overlap
    expected_fg[0, 0, 2:4, 2:4] = 0.25  # box 2: rows 2-3, cols 2-3
    assert torch.equal(fg, expected_fg)
    expected_bg = torch.zeros(2, 1, 4, 4)
    expected_bg[0] = (expected_fg[0] == 0).float() / 10  # 16 - 6 cells
    expected_bg[1] = 1 / 16  # no boxes: all background
    assert torch.allclose(bg, expected_bg)
    assert fg.dtype == torch.float32 and bg.dtype == torch.float32


def test_fgd_masks_match_explicit_on_random_boxes():
    g = torch.Generator().manual_seed(0)
    boxes_list = []
    for k in (5, 0, 3):
        xy = torch.rand(k, 2, generator=g) * 40 - 4
        wh = torch.rand(k, 2, generator=g) * 20
        boxes_list.append(torch.cat([xy, xy + wh], dim=1))
    for feat_hw in [(4, 4), (8, 6), (1, 1), (16, 16)]:
        fg, bg = fgd_masks(boxes_list, INPUT_HW, feat_hw)
        ref_fg, ref_bg = explicit_masks(
            [b.tolist() for b in boxes_list], INPUT_HW, feat_hw)
        np.testing.assert_allclose(fg.numpy(), ref_fg, rtol=1e-6)
        np.testing.assert_allclose(bg.numpy(), ref_bg, rtol=1e-6)


def test_fgd_masks_fully_covered_image_has_zero_background():
    fg, bg = fgd_masks([torch.tensor([[0., 0., 32., 32.]])], INPUT_HW, (2, 2))
    assert torch.allclose(fg, torch.full((1, 1, 2, 2), 0.25))
    assert torch.equal(bg, torch.zeros(1, 1, 2, 2))


def test_fgd_feature_loss_matches_explicit():
    s, t = pair((2, 3, 4, 4))
    fg, bg = fgd_masks(
        [torch.tensor(BOXES[0]), torch.zeros(0, 4)], INPUT_HW, (4, 4))
    sp, ch = spatial_channel_attention(t, 0.5)
    w = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    l_fg, l_bg = fgd_feature_loss(s, t, fg, bg, sp, ch, weight=w)
    ref_fg, ref_bg = explicit_masks(BOXES, INPUT_HW, (4, 4))
    ref_sp, ref_ch = explicit_attention(t, 0.5)
    sn, tn, wn = s.double().numpy(), t.double().numpy(), w.double().numpy()
    exp_fg = exp_bg = 0.0
    for idx in np.ndindex(sn.shape):
        n, c, y, x = idx
        term = ((sn[idx] - tn[idx])**2 * ref_sp[n, 0, y, x] *
                ref_ch[n, c, 0, 0] * wn[n, 0, y, x])
        exp_fg += term * ref_fg[n, 0, y, x]
        exp_bg += term * ref_bg[n, 0, y, x]
    assert l_fg.item() == pytest.approx(exp_fg / 2, rel=1e-5)
    assert l_bg.item() == pytest.approx(exp_bg / 2, rel=1e-5)


def test_fgd_mask_loss_matches_explicit():
    s, t = pair((2, 3, 4, 4))
    got = fgd_mask_loss(
        spatial_channel_attention(s, 0.5), spatial_channel_attention(t, 0.5))
    s_sp, s_ch = explicit_attention(s, 0.5)
    t_sp, t_ch = explicit_attention(t, 0.5)
    expected = (np.abs(s_sp - t_sp).sum() + np.abs(s_ch - t_ch).sum()) / 2
    assert got.item() == pytest.approx(expected, rel=1e-5)


def test_fgd_relation_loss():
    a = torch.tensor([[[[1., 2.]]], [[[0., 0.]]]])
    b = torch.tensor([[[[0., 0.]]], [[[3., 0.]]]])
    assert fgd_relation_loss(a, b).item() == pytest.approx((1 + 4 + 9) / 2)


def test_global_context_block_is_identity_at_init():
    block = GlobalContextBlock(4)
    assert block.transform[-1].weight.abs().sum() == 0
    assert block.transform[-1].bias.abs().sum() == 0
    f, _ = pair()
    assert torch.equal(block(f), f)


def test_global_context_block_matches_explicit():
    block = randomize_(GlobalContextBlock(6))
    f, _ = pair((2, 6, 3, 5))
    np.testing.assert_allclose(
        block(f).detach().numpy(), explicit_gc(block, f), rtol=1e-4,
        atol=1e-5)


# ----------------------------------------------------------- FGDLoss
def test_registered_with_published_defaults():
    loss = MODELS.build(dict(type='FGDLoss', in_channels=4, num_levels=2))
    assert isinstance(loss, FGDLoss)
    assert (loss.temperature, loss.alpha_fg, loss.beta_bg, loss.gamma_mask,
            loss.lambda_rela, loss.loss_weight) == (0.5, 1e-3, 5e-4, 1e-3,
                                                    5e-6, 1.0)
    assert len(loss.student_context) == len(loss.teacher_context) == 2
    assert loss.student_context[0] is not loss.teacher_context[0]
    assert loss.student_context[0] is not loss.student_context[1]


@pytest.mark.parametrize('kwargs, exc, msg', [
    (dict(in_channels=0), ValueError, r'in_channels must be >= 1, got 0'),
    (dict(in_channels=4.0), TypeError, r'in_channels must be an int'),
    (dict(num_levels=0), ValueError, r'num_levels must be >= 1, got 0'),
    (dict(temperature=0), ValueError, r'temperature must be > 0, got 0'),
    (dict(alpha_fg=-1), ValueError, r'alpha_fg must be >= 0, got -1'),
    (dict(beta_bg=-0.5), ValueError, r'beta_bg must be >= 0, got -0.5'),
    (dict(gamma_mask=-1), ValueError, r'gamma_mask must be >= 0, got -1'),
    (dict(lambda_rela=-1), ValueError, r'lambda_rela must be >= 0, got -1'),
    (dict(loss_weight=-1), ValueError, r'loss_weight must be >= 0, got -1'),
    (dict(alpha_fg=True), TypeError, r'alpha_fg must be a real number'),
])
def test_config_errors(kwargs, exc, msg):
    kwargs = {'in_channels': 4, **kwargs}
    with pytest.raises(exc, match=msg):
        FGDLoss(**kwargs)


def test_input_errors():
    loss = FGDLoss(in_channels=4, num_levels=1)
    s, t = pair()
    with pytest.raises(ValueError, match=r'FGDLoss needs data_samples'):
        loss(s, t)
    with pytest.raises(ValueError, match=r'built with num_levels=1 but got '
                       r'2 levels'):
        loss((s, s), (t, t), samples())
    with pytest.raises(ValueError, match=r'got 1 data_samples for a batch '
                       r'of 2'):
        loss(s, t, samples()[:1])
    s6, t6 = pair((2, 6, 4, 4))
    with pytest.raises(ValueError, match=r'level 0: FGDLoss was built with '
                       r'in_channels=4 but the features have 6'):
        loss(s6, t6, samples())
    bare = samples()
    bare[0] = DetDataSample(metainfo=dict(img_shape=INPUT_HW))
    bare[0].gt_instances = samples()[0].gt_instances
    with pytest.raises(ValueError, match=r"no 'batch_input_shape'"):
        loss(s, t, bare)
    with pytest.raises(ValueError, match=r'level 0: student \(2, 4, 4, 4\) '
                       r'vs teacher \(2, 4, 2, 2\)'):
        loss(s, t[:, :, :2, :2], samples())


def test_identical_inputs_give_zero_with_matching_context_blocks():
    loss = FGDLoss(in_channels=4, num_levels=1)
    randomize_(loss.student_context)
    s, _ = pair()
    # Different student/teacher blocks: only the relation term is non-zero.
    assert loss(s, s.clone(), samples()).item() > 0
    loss.teacher_context.load_state_dict(loss.student_context.state_dict())
    assert loss(s, s.clone(), samples()).item() == 0.0


def test_hand_computed_value():
    s, t = pair()
    coeffs = dict(temperature=0.7, alpha_fg=1.0, beta_bg=2.0, gamma_mask=3.0,
                  lambda_rela=4.0)
    loss = FGDLoss(in_channels=4, loss_weight=0.5, **coeffs)
    expected = explicit_fgd(s, t, BOXES, *coeffs.values())
    assert loss(s, t, samples()).item() == pytest.approx(
        0.5 * expected, rel=1e-5)


def test_each_term_is_weighted_by_its_coefficient():
    s, t = pair()
    ds = samples()
    only = dict(alpha_fg=0.0, beta_bg=0.0, gamma_mask=0.0, lambda_rela=0.0)
    values = {}
    for name in only:
        loss = FGDLoss(in_channels=4, **{**only, name: 1.0})
        values[name] = loss(s, t, ds).item()
        assert values[name] > 0
    full = FGDLoss(in_channels=4, **{k: 1.0 for k in only})(s, t, ds).item()
    assert full == pytest.approx(sum(values.values()), rel=1e-5)


def test_relation_term_uses_both_context_blocks():
    s, t = pair()
    loss = FGDLoss(
        in_channels=4, alpha_fg=0, beta_bg=0, gamma_mask=0, lambda_rela=1)
    randomize_(loss.student_context, seed=1)
    randomize_(loss.teacher_context, seed=2)
    expected = ((explicit_gc(loss.student_context[0], s) -
                 explicit_gc(loss.teacher_context[0], t))**2).sum() / 2
    assert loss(s, t, samples()).item() == pytest.approx(expected, rel=1e-4)


def test_gradients():
    loss = FGDLoss(in_channels=4)
    s, t = pair()
    s.requires_grad_(True)
    t.requires_grad_(True)
    loss(s, t, samples()).backward()
    assert s.grad is not None and s.grad.abs().sum() > 0
    assert t.grad is None
    # Both global-context blocks are trained (the last conv starts at zero,
    # so only it gets a gradient in the first step).
    for side in (loss.student_context[0], loss.teacher_context[0]):
        assert side.transform[-1].weight.grad.abs().sum() > 0


def test_image_without_boxes():
    loss = FGDLoss(in_channels=4)
    s, t = pair()
    out = loss(s, t, samples())  # image 1 has no boxes
    assert torch.isfinite(out)
    nobox = loss(s, t, samples([[], []]))
    assert torch.isfinite(nobox) and nobox > 0
    # Without boxes the fg term vanishes: alpha_fg no longer matters.
    other = FGDLoss(in_channels=4, alpha_fg=123.0)
    other.load_state_dict(loss.state_dict())
    assert other(s, t, samples([[], []])).item() == pytest.approx(
        nobox.item(), rel=1e-6)


def test_horizontal_boxes_are_accepted():
    loss = FGDLoss(in_channels=4)
    s, t = pair()
    assert torch.equal(
        loss(s, t, samples(box_type=HorizontalBoxes)), loss(s, t, samples()))


def test_uniform_weights_equal_none():
    loss = FGDLoss(in_channels=4, num_levels=2)
    s = pair()[0], pair((2, 4, 2, 2))[0]
    t = pair(seed=1)[0], pair((2, 4, 2, 2), 1)[0]
    ds = samples()
    plain = loss(s, t, ds)
    assert torch.equal(
        loss(s, t, ds, weights=tuple(map(torch.ones_like, s))), plain)
    assert torch.equal(
        loss(s, t, ds, weights=(torch.ones(2, 1, 4, 4),
                                torch.ones(2, 4, 1, 1))), plain)


def test_weights_scale_only_the_fg_and_bg_terms():
    s, t = pair()
    ds = samples()
    loss = FGDLoss(in_channels=4)
    plain = loss(s, t, ds)
    zero = loss(s, t, ds, weights=torch.zeros(2, 1, 4, 4))
    two = loss(s, t, ds, weights=torch.full((2, 1, 4, 4), 2.0))
    no_feat = FGDLoss(in_channels=4, alpha_fg=0, beta_bg=0)
    no_feat.load_state_dict(loss.state_dict())
    assert zero.item() == pytest.approx(no_feat(s, t, ds).item(), rel=1e-6)
    assert zero < plain < two
    assert (two - plain).item() == pytest.approx((plain - zero).item(),
                                                 rel=1e-4)
    # Down-weighting the object region lowers the loss.
    fg, _ = fgd_masks([torch.tensor(b).reshape(-1, 4) for b in BOXES],
                      INPUT_HW, (4, 4))
    off_objects = (fg == 0).float()
    assert zero < loss(s, t, ds, weights=off_objects) < plain
    expected = explicit_fgd(s, t, BOXES, 0.5, 1e-3, 5e-4, 1e-3, 5e-6,
                            weight=off_objects)
    assert loss(s, t, ds, weights=off_objects).item() == pytest.approx(
        expected, rel=1e-5)


def test_levels_sum():
    s = pair()[0], pair((2, 4, 2, 2))[0]
    t = pair(seed=1)[0], pair((2, 4, 2, 2), 1)[0]
    ds = samples()
    both = randomize_(FGDLoss(in_channels=4, num_levels=2))
    single = []
    for level in range(2):
        one = FGDLoss(in_channels=4, num_levels=1)
        one.student_context[0] = copy.deepcopy(both.student_context[level])
        one.teacher_context[0] = copy.deepcopy(both.teacher_context[level])
        single.append(one(s[level], t[level], ds))
    assert torch.allclose(both(s, t, ds), single[0] + single[1])


def test_fp16_and_autocast_give_float32():
    loss = randomize_(FGDLoss(in_channels=4))
    s, t = pair()
    out = loss(s.half(), t.half(), samples())
    assert out.dtype == torch.float32 and torch.isfinite(out)
    assert out.item() == pytest.approx(
        loss(s.half().float(), t.half().float(), samples()).item(), rel=1e-6)
    with torch.autocast('cpu', dtype=torch.bfloat16):
        amp = loss(s, t, samples())
    assert amp.dtype == torch.float32
    assert amp.item() == pytest.approx(loss(s, t, samples()).item(),
                                       rel=1e-6)
