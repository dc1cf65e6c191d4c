"""GroupBalancedSampler: group shares, determinism, DDP slicing, errors."""
import itertools
from collections import Counter

import pytest

from mmengine.registry import DATA_SAMPLERS
from mmkd_plugins.datasets import GroupBalancedSampler


class Groups:
    """A dataset stand-in: ``get_data_info(i)['group']``."""

    def __init__(self, groups):
        self.groups = list(groups)

    def __len__(self):
        return len(self.groups)

    def get_data_info(self, i):
        return {} if self.groups[i] is None else {'group': self.groups[i]}


IMBALANCED = Groups(['plain'] * 90 + ['photo'] * 10)


def shares(sampler, n=20000):
    drawn = itertools.islice(iter(sampler), n)
    counts = Counter(IMBALANCED.groups[i] for i in drawn)
    return {g: c / n for g, c in counts.items()}


def test_power_one_balances_and_zero_keeps_the_data_proportions():
    balanced = shares(GroupBalancedSampler(IMBALANCED, seed=0))
    assert balanced['photo'] == pytest.approx(0.5, abs=0.02)
    natural = shares(GroupBalancedSampler(IMBALANCED, power=0, seed=0))
    assert natural['photo'] == pytest.approx(0.1, abs=0.01)
    half = shares(GroupBalancedSampler(IMBALANCED, power=0.5, seed=0))
    # n^-0.5: photo 10 * 10^-0.5 vs plain 90 * 90^-0.5 -> 0.25
    assert half['photo'] == pytest.approx(0.25, abs=0.02)
    # Within a group images are drawn alike: every photo image turns up.
    drawn = set(itertools.islice(iter(GroupBalancedSampler(IMBALANCED, seed=1)), 2000))
    assert set(range(90, 100)) <= drawn


def test_seeded_stream_is_split_over_ranks(monkeypatch):
    one = list(itertools.islice(iter(GroupBalancedSampler(IMBALANCED, seed=3)), 40))
    assert one == list(itertools.islice(iter(GroupBalancedSampler(IMBALANCED, seed=3)), 40))
    assert one != list(itertools.islice(iter(GroupBalancedSampler(IMBALANCED, seed=4)), 40))
    ranks = []
    for rank in range(2):
        monkeypatch.setattr('mmengine.dataset.sampler.get_dist_info', lambda r=rank: (r, 2))
        ranks.append(list(itertools.islice(iter(GroupBalancedSampler(IMBALANCED, seed=3)), 20)))
    assert ranks[0] == one[0::2] and ranks[1] == one[1::2]


def test_builds_from_the_registry_with_group_counts():
    # An InfiniteSampler config (shuffle=True) switches by its type alone.
    sampler = DATA_SAMPLERS.build(dict(type='GroupBalancedSampler', dataset=IMBALANCED, seed=0,
                                       shuffle=True))
    assert sampler.group_counts == {'photo': 10, 'plain': 90} and len(sampler) == 100


@pytest.mark.parametrize('dataset,kwargs,match', [
    (IMBALANCED, dict(power=-1), 'power must be a number >= 0'),
    (IMBALANCED, dict(power='1'), 'power must be a number >= 0'),
    (IMBALANCED, dict(shuffle=False), 'shuffle=False is not supported'),
    (Groups([]), {}, 'the dataset is empty'),
    (Groups(['a', None, 'b']), {}, "image 1 of Groups has no 'group'"),
    ([1, 2, 3], {}, 'has no get_data_info'),
])
def test_errors(dataset, kwargs, match):
    with pytest.raises(ValueError, match=match):
        GroupBalancedSampler(dataset, seed=0, **kwargs)
