"""mmkd_plugins/checks.py: the one home of the build-time checks."""
import pytest
from torch import nn

from mmdet.registry import MODELS
from mmkd_plugins.checks import (check_choice, check_loss_args, check_mc_options,
                                 check_number, check_positive_int, distill_loss_class,
                                 fill_loss_args)
from mmkd_plugins.losses import FGDLoss, PKDLoss


def test_check_number():
    assert check_number('x', 0) == 0.0
    assert isinstance(check_number('x', 3), float)
    with pytest.raises(ValueError, match=r'x must be >= 0, got -1'):
        check_number('x', -1)
    with pytest.raises(ValueError, match=r'temperature must be > 0, got 0'):
        check_number('temperature', 0, inclusive=False)
    with pytest.raises(ValueError, match=r'x must be finite, got nan'):
        check_number('x', float('nan'))
    with pytest.raises(ValueError, match=r'x must be finite, got inf'):
        check_number('x', float('inf'))
    with pytest.raises(TypeError, match=r"x must be a real number, got '1'"):
        check_number('x', '1')
    with pytest.raises(TypeError, match=r'x must be a real number, got True'):
        check_number('x', True)


def test_check_positive_int():
    assert check_positive_int('n', 3) == 3
    with pytest.raises(ValueError, match=r'n must be >= 1, got 0'):
        check_positive_int('n', 0)
    with pytest.raises(TypeError, match=r'n must be an int, got 2.0'):
        check_positive_int('n', 2.0)
    with pytest.raises(TypeError, match=r'n must be an int, got True'):
        check_positive_int('n', True)


def test_check_number_with_an_upper_bound_names_the_interval():
    assert check_number('p', 1, max_value=1) == 1.0
    with pytest.raises(ValueError, match=r'tau must be in \[0, 1\], got 1.5'):
        check_number('tau', 1.5, max_value=1)
    with pytest.raises(ValueError, match=r'tau must be in \[0, 1\], got -0.1'):
        check_number('tau', -0.1, max_value=1)
    with pytest.raises(ValueError, match=r'scale must be in \(0, 1\], got 0'):
        check_number('scale', 0, inclusive=False, max_value=1)


def test_check_choice():
    assert check_choice('mode', 'a', ('a', 'b')) == 'a'
    with pytest.raises(ValueError, match=r"mode must be one of \('a', 'b'\), got 'c'"):
        check_choice('mode', 'c', ['a', 'b'])


@pytest.mark.parametrize('args,match', [
    (('roi', 'spatial', 1.0), r"k.placement must be one of \('stage', 'head'\)"),
    (('neck', 'spatial', 1.0), r"k.placement='neck' was removed: MMDetection's FPN is linear"),
    (('stage', 'pixel', 1.0), r'k.reduce must be one of'),
    (('stage', 'spatial', 1.5), r'k.scale must be in \(0, 1\], got 1.5'),
    (('head', 'both', 1.0), r"k.reduce='both' with placement='head'"),
])
def test_mc_options(args, match):
    assert check_mc_options('head', 'spatial', 0.5, 'k.') == 0.5
    with pytest.raises(ValueError, match=match):
        check_mc_options(*args, prefix='k.')


class NotADistillLoss(nn.Module):
    pass


def test_distill_loss_class():
    assert distill_loss_class(dict(type='FGDLoss'), 'k') is FGDLoss
    assert distill_loss_class(dict(type=PKDLoss), 'k') is PKDLoss
    with pytest.raises(TypeError, match=r'k must be a loss config dict with a "type"'):
        distill_loss_class('FGDLoss', 'k')
    with pytest.raises(ValueError, match=r"k.type: unknown loss 'NoSuchLoss'"):
        distill_loss_class(dict(type='NoSuchLoss'), 'k')
    with pytest.raises(TypeError, match=r"k.type: 'MSELoss' is not a distillation loss"):
        distill_loss_class(dict(type='MSELoss'), 'k')
    with pytest.raises(TypeError, match='is not a distillation loss'):
        distill_loss_class(dict(type=NotADistillLoss), 'k')
    assert MODELS.get('MSELoss') is not None  # mmdet's own: the check above can fail


def test_loss_args_are_checked_and_filled():
    check_loss_args(FGDLoss, dict(type='FGDLoss', alpha_fg=1.0), 'k')
    with pytest.raises(ValueError, match=r"k: FGDLoss has no argument\(s\) \['alpha'\]"):
        check_loss_args(FGDLoss, dict(type='FGDLoss', alpha=1.0), 'k')
    cfg = fill_loss_args(FGDLoss, dict(type='FGDLoss'), 'k',
                         dict(in_channels=8, num_levels=None, num_classes=10), 'probe gives')
    assert cfg == dict(type='FGDLoss', in_channels=8)  # None and unknown arguments skipped
    with pytest.raises(ValueError, match='k.in_channels=4 but probe gives 8'):
        fill_loss_args(FGDLoss, dict(type='FGDLoss', in_channels=4), 'k',
                       dict(in_channels=8), 'probe gives')
