"""tools/uet_regions.py: box masks on feature grids and inside/outside means."""
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData


def test_box_mask_marks_the_cells_a_box_touches(load_tool):
    tool = load_tool('uet_regions')
    # 64x64 input, 8x8 level (stride 8): box 10..30 x 0..7 touches cols 1-3, row 0.
    mask = tool.box_mask(torch.tensor([[10., 0., 30., 7.]]), (64, 64), (8, 8))
    want = torch.zeros(8, 8, dtype=torch.bool)
    want[0, 1:4] = True
    assert torch.equal(mask, want)
    # Boxes past the border are clipped; no boxes, nothing marked.
    assert tool.box_mask(torch.tensor([[60., 60., 90., 90.]]), (64, 64), (8, 8))[7, 7]
    assert not tool.box_mask(torch.zeros(0, 4), (64, 64), (8, 8)).any()


def test_level_stats_separates_boxes_from_background(load_tool):
    """Samples that disagree only inside the box: U is higher there, so the
    weight is below 1 inside and above 1 outside; |F| is read from the
    teacher feature."""
    tool = load_tool('uet_regions')
    torch.manual_seed(0)
    samples = torch.ones(4, 1, 2, 8, 8)
    samples[:, :, :, :4, :4] += torch.randn(4, 1, 2, 4, 4)  # noisy top-left quarter
    teacher = torch.zeros(1, 2, 8, 8)
    teacher[:, :, :4, :4] = 3.0
    sample = DetDataSample()
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[0., 0., 31., 31.]]))
    (stats,) = tool.level_stats([samples], [teacher], [sample], (64, 64), strength=1.0)
    assert stats['U']['fg'] > 0.5 and stats['U']['bg'] == 0
    assert stats['w']['fg'] < 1 < stats['w']['bg']
    assert stats['w rel']['fg'] < 1 < stats['w rel']['bg']  # noisy for its size too
    assert stats['|F|'] == {'fg': 3.0, 'bg': 0.0}
