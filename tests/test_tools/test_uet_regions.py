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
    """A variance only inside the box: U is higher there, so weight mode's
    weight is below 1 inside and above 1 outside; |F| is read from the
    teacher feature."""
    tool = load_tool('uet_regions')
    var = torch.zeros(1, 2, 8, 8)
    var[:, :, :4, :4] = 1.0  # an uncertain top-left quarter
    teacher = torch.zeros(1, 2, 8, 8)
    teacher[:, :, :4, :4] = 4.0
    sample = DetDataSample()
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[0., 0., 31., 31.]]))
    (stats,) = tool.level_stats([var], [teacher], [sample], (64, 64), strength=1.0)
    assert stats['U'] == {'fg': 1.0, 'bg': 0.0}
    assert stats['|F|'] == {'fg': 4.0, 'bg': 0.0}
    assert stats['U/|F|']['fg'] == 0.25
    assert stats['w']['fg'] < 1 < stats['w']['bg']


def test_figure_shows_each_image_beside_its_levels(load_tool, tmp_path):
    tool = load_tool('uet_regions')
    images = [torch.randint(0, 256, (3, 60, 64), dtype=torch.uint8) for _ in range(2)]
    samples = []
    for _ in images:
        sample = DetDataSample()
        sample.gt_instances = InstanceData(bboxes=torch.tensor([[4., 4., 30., 40.]]))
        samples.append(sample)
    var = [torch.rand(2, 4, 8, 8), torch.rand(2, 4, 4, 4)]
    teacher = [torch.randn(2, 4, 8, 8), torch.randn(2, 4, 4, 4)]
    path = str(tmp_path / 'maps.png')
    tool.draw_figure(path, images, samples, var, teacher, (64, 64), 'title')
    import matplotlib.image
    picture = matplotlib.image.imread(path)
    assert picture.shape[0] > 200 and picture.shape[1] > 3 * 200  # 2 rows, 3 columns
