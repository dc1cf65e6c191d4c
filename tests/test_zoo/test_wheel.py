"""The wheel works without the repository.

Builds the wheel from a copy of the source tree, installs it with
``--no-deps`` into a fresh virtual environment that reuses the installed
dependencies (a ``.pth`` file naming this interpreter's site-packages, found
with ``site.getsitepackages()``: CI runs elsewhere), and from a folder
outside the repository, with only that environment's console scripts:
makes a little demo data, trains an FGD config that names a shipped config
as ``_base_ = ['mmkd_plugins::...']`` for 2 iterations, exports the student
with its zoo entry, and reads the package's model index the way ``mim
search`` does.
"""
import os
import os.path as osp
import shutil
import site
import subprocess
import sys
import zipfile

import pytest

from mmkd_plugins.zoo.resources import shipped_configs

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
FGD = 'fgd/fgd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py'
STUDENT = 'demo/retinanet_r18-w16_digits.py'
# Left behind by development, never part of the package.
_NOT_SOURCE = shutil.ignore_patterns('.git', '.venv', 'work_dirs', 'data', 'build', 'dist',
                                     '*.egg-info', '__pycache__', '.device', '.pytest_cache')


def run(cmd, cwd, env, timeout=300):
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, (f'{cmd} failed:\n{proc.stdout[-3000:]}\n'
                                  f'{proc.stderr[-5000:]}')
    return proc.stdout + proc.stderr


@pytest.fixture(scope='module')
def wheel(tmp_path_factory):
    """The wheel, built as a user would (pip wheel, no build isolation: the
    build needs only setuptools) from a clean copy of the tree, so that the
    repository's own build/ folder can neither leak into it nor be touched."""
    tmp = tmp_path_factory.mktemp('wheel')
    src = tmp / 'src'
    shutil.copytree(REPO, src, symlinks=True, ignore=_NOT_SOURCE)
    run([sys.executable, '-m', 'pip', 'wheel', '--no-deps', '--no-build-isolation',
         '--no-index', '-w', str(tmp / 'dist'), str(src)], cwd=str(tmp), env=os.environ)
    (path,) = (tmp / 'dist').iterdir()
    return path


def test_wheel_carries_configs_tools_and_index(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    mim = 'mmkd_plugins/.mim/'
    assert mim + 'model-index.yml' in names
    for config in shipped_configs():
        assert mim + 'configs/' + config in names, config
    for metafile in ('fgd', 'uet', 'cross_view', 'group_dro', 'demo'):
        assert f'{mim}configs/{metafile}/metafile.yml' in names
    assert mim + 'configs/_base_/datasets/digits_detection.py' in names
    tools = sorted(n[len(mim) + 6:] for n in names if n.startswith(mim + 'tools/'))
    assert tools == sorted(t for t in os.listdir(osp.join(REPO, 'tools')) if t.endswith('.py'))
    entry_points = next(n for n in names if n.endswith('entry_points.txt'))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    for script in ('mmkd-train = mmkd_plugins.cli:train', 'mmkd-test = mmkd_plugins.cli:test',
                   'mmkd-export = mmkd_plugins.cli:export'):
        assert script in text


def test_installed_wheel_trains_exports_and_lists_models(wheel, tmp_path):
    venv = tmp_path / 'venv'
    base_python = osp.join(sys.base_prefix, 'bin', 'python3')
    run([base_python, '-m', 'venv', '--without-pip', str(venv)], cwd=str(tmp_path),
        env=os.environ)
    python = str(venv / 'bin' / 'python')
    purelib = run([python, '-c', 'import sysconfig; print(sysconfig.get_paths()["purelib"])'],
                  cwd=str(tmp_path), env=os.environ).strip()
    # Reuse torch, mmcv, mmdet... from this interpreter's site-packages. A
    # plain path line does not run the .pth files found there, so the editable
    # install of the repository (an import hook) stays out.
    deps = [p for p in site.getsitepackages() if osp.isdir(p)]
    assert deps, site.getsitepackages()
    with open(osp.join(purelib, 'deps.pth'), 'w') as f:
        f.write('\n'.join(deps) + '\n')
    run([sys.executable, '-m', 'pip', '--python', python, 'install', '--no-deps',
         '--no-index', str(wheel)], cwd=str(tmp_path), env=os.environ)

    env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
    env.update(OMP_NUM_THREADS='1', MKL_NUM_THREADS='1', PATH=f'{venv / "bin"}:{env["PATH"]}')
    work = tmp_path / 'user'
    work.mkdir()
    where = run([python, '-c', 'import mmkd_plugins; print(mmkd_plugins.__file__); '
                 'print(mmkd_plugins.zoo.tool_path("make_demo_data.py"))'], cwd=str(work),
                env=env).split()
    assert where[0] == osp.join(purelib, 'mmkd_plugins', '__init__.py')
    run([python, where[1], '--out', 'data/digits', '--train', '16', '--val', '8'],
        cwd=str(work), env=env)

    # A user's configs on top of shipped ones, through mmengine's scope lookup.
    # After 2 iterations the student scores below the default threshold, and
    # an empty validation would leave nothing to publish.
    (work / 'my_student.py').write_text(
        f"_base_ = ['mmkd_plugins::{STUDENT}']\n"
        "model = dict(test_cfg=dict(score_thr=0.0))\n")
    (work / 'my_fgd.py').write_text(
        f"_base_ = ['mmkd_plugins::{FGD}']\n"
        "max_iters = 2\n"
        "train_cfg = dict(max_iters=max_iters, val_interval=max_iters)\n"
        "default_hooks = dict(checkpoint=dict(interval=max_iters))\n"
        "model = dict(student='{{fileDirname}}/my_student.py',\n"
        "             teacher_ckpt=None)  # a random teacher: this checks the plumbing\n")
    log = run([str(venv / 'bin' / 'mmkd-train'), 'my_fgd.py', '--work-dir', 'work'],
              cwd=str(work), env=env)
    assert 'coco/bbox_mAP' in log and 'teacher/coco/bbox_mAP' in log
    assert osp.isfile(work / 'work' / 'iter_2.pth')

    out = run([str(venv / 'bin' / 'mmkd-export'), 'my_fgd.py', 'work/iter_2.pth', '--out',
               'export', '--publish', '--collection', 'FGD', '--images', '2'],
              cwd=str(work), env=env)
    assert 'zoo entry:  my_fgd_student in export/metafile.yml' in out

    # What `mim search mmkd_plugins` reads: <installed package>/.mim/model-index.yml,
    # found through the installed distribution, as mim's load_metadata_from_local does.
    check = (
        'import os.path as osp\n'
        'from mmengine.utils import get_installed_path\n'
        'from modelindex import load\n'
        'from mmkd_plugins.zoo.metafile import validate_index\n'
        'index = osp.join(get_installed_path("mmkd_plugins"), ".mim", "model-index.yml")\n'
        'print(index)\n'
        'print(len(load(index).models))\n'
        'print(validate_index(index, parse_configs=False))\n'
        'print(validate_index("export/model-index.yml"))\n')
    lines = run([python, '-c', check], cwd=str(work), env=env).strip().splitlines()
    assert lines[-4] == osp.join(purelib, 'mmkd_plugins', '.mim', 'model-index.yml')
    assert int(lines[-3]) >= 25
    assert lines[-2:] == ['[]', '[]']
