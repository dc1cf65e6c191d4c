"""Every UET config is its FGD twin with the loss spec changed, nothing else."""
import glob
import os.path as osp

import pytest
from test_configs import settings

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
UET = sorted(glob.glob(osp.join(REPO, 'configs', 'uet', 'uet-fgd_*.py')))


def test_one_uet_config_per_fgd_config():
    fgd = sorted(osp.basename(p) for p in glob.glob(osp.join(REPO, 'configs', 'fgd', '*.py')))
    assert [osp.basename(p)[len('uet-'):] for p in UET] == fgd


@pytest.mark.parametrize('path', UET, ids=osp.basename)
def test_uet_config_changes_only_the_loss_spec(path):
    uet = settings(path)
    twin = settings(path.replace('/uet/uet-fgd_', '/fgd/fgd_'))
    uet_spec = uet['model']['distill_losses'].pop('loss_fgd')
    twin_spec = twin['model']['distill_losses'].pop('loss_fgd')
    assert uet == twin
    loss, mc = uet_spec.pop('loss'), uet_spec.pop('mc_dropout')
    assert uet_spec == {k: v for k, v in twin_spec.items() if k != 'loss'}
    assert loss['type'] == 'UncertaintyAwareLoss' and loss['host'] == twin_spec['loss']
    assert mc['passes'] == 8 and mc['placement'] == 'backbone'
