"""Naming a shipped config: config_path() and the CLIs' mmkd_plugins:: prefix."""
import os.path as osp

import pytest

import mmkd_plugins
from mmkd_plugins.cli import resolve_scoped
from mmkd_plugins.zoo.resources import shipped_configs, tool_path

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
NAME = 'fgd/fgd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py'


@pytest.mark.parametrize('name', [NAME, NAME[:-3], 'mmkd_plugins::' + NAME, 'configs/' + NAME])
def test_config_path_forms(name):
    path = mmkd_plugins.config_path(name)
    assert osp.samefile(path, osp.join(REPO, 'configs', NAME))


def test_config_path_names_the_closest():
    with pytest.raises(FileNotFoundError, match=r"'fgd/fgd_retinanet-r18-w16_digits.py' is not a "
                                                r"config shipped with mmkd_plugins .*closest: "
                                                r"\[.*'fgd/fgd_retinanet-r18-w16_retinanet"):
        mmkd_plugins.config_path('fgd/fgd_retinanet-r18-w16_digits.py')


def test_shipped_configs_leave_out_base_fragments():
    names = shipped_configs()
    assert NAME in names and 'demo/retinanet_r18-w32_digits.py' in names
    assert not any('_base_' in n for n in names)


def test_tool_path():
    assert osp.samefile(tool_path('make_demo_data.py'), osp.join(REPO, 'tools', 'make_demo_data.py'))
    with pytest.raises(FileNotFoundError, match="'nope.py' is not a tool shipped"):
        tool_path('nope.py')


def test_cli_resolves_only_scoped_arguments():
    argv = ['mmkd_plugins::' + NAME, '--work-dir', 'w', '--cfg-options',
            'model.teacher_ckpt=t.pth']
    assert resolve_scoped(argv) == [mmkd_plugins.config_path(NAME), *argv[1:]]


def test_importing_registers_the_config_scope():
    """mmengine's _base_ lookup then accepts the prefix (resolved in an
    installed wheel: tests/test_zoo/test_wheel.py)."""
    from mmengine.config.utils import MODULE2PACKAGE, _get_package_and_cfg_path
    assert MODULE2PACKAGE['mmkd_plugins'] == 'mmkd_plugins'
    assert _get_package_and_cfg_path('mmkd_plugins::' + NAME) == ('mmkd_plugins', NAME)
