"""GroupCountsHook: the training dataset's group sizes reach the objective."""
import types

import pytest
from conftest import distiller_cfg

from mmdet.registry import HOOKS, MODELS

GROUPS = ['plain', 'photo']


class Dataset:
    def __init__(self, groups):
        self.groups = groups

    def __len__(self):
        return len(self.groups)

    def get_data_info(self, i):
        return {'group': self.groups[i]}


class Logger:
    def __init__(self):
        self.messages = []

    def info(self, msg):
        self.messages.append(msg)


def runner(model, groups):
    loader = types.SimpleNamespace(dataset=Dataset(groups))
    return types.SimpleNamespace(model=model, train_dataloader=loader, logger=Logger())


@pytest.mark.parametrize('objective', [
    dict(type='GroupReweighted', groups=GROUPS),
    dict(type='GroupDRO', groups=GROUPS, adjustment=1.0),
])
def test_counts_the_training_images_of_each_group(objective):
    model = MODELS.build(distiller_cfg(objective=objective))
    run = runner(model, ['plain', 'photo', 'plain', 'plain'])
    HOOKS.build(dict(type='GroupCountsHook')).before_train(run)
    assert model.objective.counts.values == (1, 3)  # photo, plain: sorted
    assert run.logger.messages == [
        "GroupCountsHook: training images per group {'photo': 1, 'plain': 3}"]


def test_config_counts_must_agree_with_the_data():
    model = MODELS.build(distiller_cfg(objective=dict(
        type='GroupReweighted', groups=GROUPS, group_counts=dict(plain=3, photo=2))))
    with pytest.raises(ValueError, match=r"GroupReweighted: group_counts=\{'photo': 2, "
                                         r"'plain': 3\} but the training dataset has "
                                         r"\{'photo': 1, 'plain': 3\}"):
        HOOKS.build(dict(type='GroupCountsHook')).before_train(
            runner(model, ['plain', 'photo', 'plain', 'plain']))


def test_errors():
    hook = HOOKS.build(dict(type='GroupCountsHook'))
    plain = MODELS.build(distiller_cfg())
    with pytest.raises(TypeError, match=r'GroupCountsHook needs a group objective \(GroupDRO, '
                                        r'GroupReweighted\), but the distiller has WholeBatch'):
        hook.before_train(runner(plain, ['plain']))
    model = MODELS.build(distiller_cfg(objective=dict(type='GroupReweighted', groups=GROUPS)))
    with pytest.raises(ValueError, match=r"GroupCountsHook: image 1 of Dataset has no 'group'"):
        hook.before_train(runner(model, ['plain', None]))
    # A group of the data that the objective does not know.
    with pytest.raises(ValueError, match=r"unknown \['sepia'\]"):
        hook.before_train(runner(model, ['plain', 'photo', 'sepia']))
