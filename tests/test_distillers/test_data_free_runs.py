"""Data-free distillation inside mmengine's runner: checkpoints hold the
generator and both optimisers, ``--resume`` continues exactly, and the
picture hook writes its grid."""
import torch
from mmengine.runner import Runner
from conftest import data_free_runner_cfg

from mmkd_plugins.compat import load_checkpoint_file

CLASSES = tuple(str(i) for i in range(10))  # conftest.data_free_runner_cfg's


def _optimizer_states(runner):
    return {name: wrapper.optimizer.state_dict() for name, wrapper in
            runner.optim_wrapper.items()}


def _assert_same_state(a: dict, b: dict, where: str):
    assert a.keys() == b.keys(), where
    for key in a:
        if isinstance(a[key], dict):
            _assert_same_state(a[key], b[key], f'{where}.{key}')
        elif isinstance(a[key], torch.Tensor):
            assert torch.equal(a[key], b[key]), f'{where}.{key}'
        elif isinstance(a[key], (list, tuple)) and a[key] and isinstance(a[key][0], dict):
            for i, (x, y) in enumerate(zip(a[key], b[key])):
                _assert_same_state(x, y, f'{where}.{key}[{i}]')
        else:
            assert a[key] == b[key], f'{where}.{key}'


def test_resume_equals_uninterrupted_training(tmp_path, fast_runner):
    # student_steps=2: generator steps after iterations 1 and 3, one on each
    # side of the checkpoint at 2.
    straight = Runner.from_cfg(data_free_runner_cfg(str(tmp_path / 'a'), 4, 'df_resume_a'))
    straight.train()
    assert straight.iter == 4

    first = Runner.from_cfg(data_free_runner_cfg(str(tmp_path / 'b'), 2, 'df_resume_b'))
    first.train()
    ckpt_path = str(tmp_path / 'b' / 'iter_2.pth')
    ckpt = load_checkpoint_file(ckpt_path, map_location='cpu')
    assert any(k.startswith('generator.') for k in ckpt['state_dict'])
    assert int(ckpt['state_dict']['data_free_step']) == 2
    assert set(ckpt['optimizer']) == {'student', 'generator'}
    assert ckpt['optimizer']['generator']['state']  # Adam moments after one step
    assert set(ckpt['param_schedulers']) == {'student', 'generator'}
    assert ckpt['meta']['dataset_meta']['classes'] == CLASSES

    resumed = Runner.from_cfg(data_free_runner_cfg(str(tmp_path / 'b'), 4, 'df_resume_c',
                                                   resume=True, load_from=ckpt_path))
    resumed.train()
    assert resumed.iter == 4

    state_a, state_c = straight.model.state_dict(), resumed.model.state_dict()
    assert state_a.keys() == state_c.keys()
    moved = [k for k in state_a if not torch.equal(state_a[k], ckpt['state_dict'][k])]
    assert any(k.startswith('generator.') for k in moved)  # the 2nd generator step ran
    assert any(k.startswith('student.') for k in moved)
    for key in state_a:
        assert torch.equal(state_a[key], state_c[key]), key
    _assert_same_state(_optimizer_states(straight), _optimizer_states(resumed), 'optimizer')
    assert straight.optim_wrapper.get_lr() == resumed.optim_wrapper.get_lr()

    # The picture hook: three points over each run, the first before any
    # update; the 2-iteration run wrote 0, 1, 2, and the resumed 4-iteration
    # run added 4 to the rows it found.
    from PIL import Image
    straight_rows = sorted(p.name for p in (tmp_path / 'a' / 'generated').iterdir())
    assert straight_rows == ['grid.png', 'iter_000000.png', 'iter_000002.png', 'iter_000004.png']
    folder = tmp_path / 'b' / 'generated'
    assert sorted(p.name for p in folder.iterdir()) == [
        'grid.png', 'iter_000000.png', 'iter_000001.png', 'iter_000002.png', 'iter_000004.png']
    row, grid = Image.open(folder / 'iter_000004.png'), Image.open(folder / 'grid.png')
    assert row.size == (2 * 64 + 2, 64)  # two 64 px images, a 2 px gap
    assert grid.size == (64 + row.width, 4 * 64 + 3 * 2)  # a label column, four rows
    # the same latents: the row of the resumed run is the straight run's
    assert Image.open(tmp_path / 'a' / 'generated' / 'iter_000004.png').tobytes() == row.tobytes()
