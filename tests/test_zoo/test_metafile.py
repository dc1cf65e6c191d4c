"""The repository's model index and metafiles: valid for the ``model-index``
library (as ``mi check`` in OpenMMLab's CI), every listed config exists and
parses, and every config of a method folder is listed."""
import glob
import os.path as osp
import re
import shutil

import pytest

from mmkd_plugins.zoo.metafile import (dump_metafile, iter_models, load_yaml, metafile_paths,
                                       upsert_model, validate_index)
from mmkd_plugins.zoo.results import load_accuracy, row_config, row_metrics
from mmkd_plugins.zoo.resources import package_root

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
INDEX = osp.join(REPO, 'model-index.yml')
ACCURACY = osp.join(REPO, 'docs', 'accuracy.json')


def test_repository_index_is_valid():
    assert validate_index(INDEX) == []


def test_every_metafile_is_imported_and_lists_its_folder():
    """A metafile nobody imports is invisible to mim and mmengine, and a
    config missing from its folder's metafile is not in the zoo."""
    imported = sorted(osp.relpath(p, REPO) for p in metafile_paths(INDEX))
    on_disk = sorted(osp.relpath(p, REPO) for p in glob.glob(osp.join(REPO, 'configs', '*',
                                                                        'metafile.yml')))
    assert imported == on_disk
    for metafile in on_disk:
        folder = osp.dirname(metafile)
        listed = {m['Config'] for m in load_yaml(osp.join(REPO, metafile))['Models']}
        configs = {osp.relpath(p, REPO) for p in glob.glob(osp.join(REPO, folder, '*.py'))}
        assert configs == listed, f'{metafile}: unlisted {sorted(configs - listed)}, ' \
                                  f'missing {sorted(listed - configs)}'


@pytest.mark.skipif(not osp.isfile(ACCURACY),
                    reason='docs/accuracy.json is not there yet (the accuracy benchmark writes it)')
def test_metafiles_match_the_accuracy_table():
    """Rows added to the table without `make metafiles` leave the zoo stale."""
    results = {(m['Config'], r['Dataset']): r['Metrics'] for _, m in iter_models(INDEX)
               for r in m['Results']}
    for row in load_accuracy(ACCURACY):
        path, extras = row_config(row)
        if extras or not any(config == path for config, _ in results):
            continue
        assert results.get((path, row['suite'])) == row_metrics(row), \
            f'{path} ({row["suite"]}): run `make metafiles` (tools/sync_metafiles.py)'


def test_coco_configs_carry_the_papers_numbers_marked_as_such():
    for metafile in metafile_paths(INDEX):
        for model in load_yaml(metafile)['Models']:
            if not model['Config'].endswith('_coco.py'):
                continue
            source = model['Metadata']['Results Source']['COCO']
            assert 'not trained here' in source, (model['Name'], source)
            assert [r['Dataset'] for r in model['Results']] in ([], ['COCO'])


def test_metafiles_are_in_the_canonical_layout(tmp_path):
    """Tools rewrite metafiles with dump_metafile; hand edits in another
    layout would turn their next run into a whole-file diff."""
    for path in metafile_paths(INDEX) + [INDEX]:
        dump_metafile(load_yaml(path), str(tmp_path / 'out.yml'))
        assert (tmp_path / 'out.yml').read_text() == open(path).read(), path


def test_package_root_holds_the_index():
    """In a checkout .mim/ links to the repository's files; a wheel copies them."""
    assert osp.samefile(osp.join(package_root(), 'model-index.yml'), INDEX)
    assert osp.samefile(osp.join(package_root(), 'configs'), osp.join(REPO, 'configs'))
    assert osp.samefile(osp.join(package_root(), 'tools'), osp.join(REPO, 'tools'))


@pytest.fixture
def small_index(tmp_path):
    """A copy of the FGD metafile, with a two-entry index around it."""
    (tmp_path / 'configs' / 'fgd').mkdir(parents=True)
    for name in ('fgd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py', 'metafile.yml'):
        shutil.copy(osp.join(REPO, 'configs', 'fgd', name), tmp_path / 'configs' / 'fgd' / name)
    for folder in ('demo', '_base_'):
        shutil.copytree(osp.join(REPO, 'configs', folder), tmp_path / 'configs' / folder)
    meta = load_yaml(str(tmp_path / 'configs' / 'fgd' / 'metafile.yml'))
    meta['Models'] = [m for m in meta['Models'] if m['Config'].endswith('_digits.py')]
    dump_metafile(meta, str(tmp_path / 'configs' / 'fgd' / 'metafile.yml'))
    dump_metafile({'Import': ['configs/fgd/metafile.yml']}, str(tmp_path / 'model-index.yml'))
    return tmp_path


def _edit(index_root, edit):
    path = str(index_root / 'configs' / 'fgd' / 'metafile.yml')
    data = load_yaml(path)
    edit(data['Models'][0])
    dump_metafile(data, path)
    return validate_index(str(index_root / 'model-index.yml'))


def test_validator_accepts_the_small_index(small_index):
    assert validate_index(str(small_index / 'model-index.yml')) == []


@pytest.mark.parametrize('edit,message', [
    (lambda m: m.update(Config='configs/fgd/nope.py'),
     r"model 'fgd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits': Config "
     r"'configs/fgd/nope.py' does not exist"),
    (lambda m: m.update({'In Collection': 'FDG'}),
     r"In Collection 'FDG' is not a collection of the index \(\['FGD'\]\)"),
    (lambda m: m['Metadata'].update(Iterations=1000),
     r"Metadata.Iterations is 1000 but the config's train_cfg.max_iters is 1500"),
    (lambda m: m['Results'].append({'Task': 'Object Detection', 'Dataset': 'glyphs',
                                     'Metrics': {'box AP': 35.9}}),
     r"Results Source does not say where the 'glyphs' result comes from"),
    (lambda m: m.update(Weights='fgd-0123abcd.pth'),
     r"Weights 'fgd-0123abcd.pth' is neither a URL nor a file"),
    (lambda m: m.update(Results=[{'Task': 'Object Detection', 'Dataset': 'digits'}]),
     r"Field 'Metrics' is missing"),  # the model-index library's own check
])
def test_validator_names_the_problem(small_index, edit, message):
    errors = _edit(small_index, edit)
    assert any(re.search(message, e) for e in errors), errors


def test_validator_reports_a_config_that_does_not_parse(small_index):
    cfg = small_index / 'configs' / 'fgd' / 'fgd_retinanet-r18-w16_retinanet-r18-w32_1500i_digits.py'
    cfg.write_text(cfg.read_text() + '\nmodel = dict(\n')
    (error,) = validate_index(str(small_index / 'model-index.yml'))
    assert 'does not parse' in error and 'fgd_retinanet-r18-w16' in error


def test_upsert_replaces_by_name_and_adds_the_collection_once(tmp_path):
    path = str(tmp_path / 'metafile.yml')
    col = {'Name': 'FGD', 'Paper': {'URL': 'https://arxiv.org/abs/2111.11837'}}
    upsert_model(path, {'Name': 'a', 'Results': []}, col)
    upsert_model(path, {'Name': 'b', 'Results': []}, col)
    upsert_model(path, {'Name': 'a', 'Results': [], 'Weights': 'a-1.pth'}, col)
    data = load_yaml(path)
    assert list(data) == ['Collections', 'Models']
    assert data['Collections'] == [col]
    assert data['Models'] == [{'Name': 'a', 'Results': [], 'Weights': 'a-1.pth'},
                              {'Name': 'b', 'Results': []}]
