"""tools/sync_metafiles.py: a hand-made accuracy table into hand-made
metafiles, and the errors for a malformed table."""
import json

import pytest

from mmkd_plugins.zoo.metafile import dump_metafile, load_yaml
from mmkd_plugins.zoo.results import load_accuracy, row_config, split_config, sync_results

FGD = 'configs/fgd/fgd_x_digits.py'
GROUP = 'configs/group_dro/group-dro-kd_x_digits-imbalanced.py'


@pytest.fixture
def index(tmp_path):
    """Two metafiles: an FGD entry with a paper's COCO result, and a group-DRO entry."""
    paper = 'reported by the FGD paper, not trained here'
    dump_metafile({'Collections': [{'Name': 'FGD'}], 'Models': [{
        'Name': 'fgd_x_digits', 'In Collection': 'FGD', 'Config': FGD,
        'Metadata': {'Results Source': {'COCO': paper}},
        'Results': [{'Task': 'Object Detection', 'Dataset': 'COCO',
                     'Metrics': {'box AP': 40.7}}]}]}, str(tmp_path / 'fgd.yml'))
    dump_metafile({'Collections': [{'Name': 'GroupDistil'}], 'Models': [{
        'Name': 'group-dro-kd', 'In Collection': 'GroupDistil', 'Config': GROUP,
        'Metadata': {'Iterations': 1500}, 'Results': []}]}, str(tmp_path / 'group.yml'))
    dump_metafile({'Import': ['fgd.yml', 'group.yml']}, str(tmp_path / 'model-index.yml'))
    return tmp_path


def write_rows(path, rows):
    path.write_text(json.dumps(rows))
    return str(path)


ROWS = [
    {'suite': 'digits', 'row': 'fgd', 'config': FGD, 'twin': 'student',
     'seeds': [0, 1, 2], 'map': [0.355, 0.349, 0.372]},
    # A variant of the same config: not the config's own result.
    {'suite': 'digits', 'row': 'fgd-light', 'config': FGD + ' --cfg-options a.b=0.01 c=2',
     'twin': 'fgd', 'seeds': [0, 1, 2], 'map': [0.5, 0.5, 0.5]},
    {'suite': 'glyphs', 'row': 'fgd', 'config': FGD, 'twin': None,
     'seeds': [0], 'map': [0.61]},
    # A variant as the accuracy harness writes it: options in cfg_options.
    {'suite': 'glyphs', 'row': 'fgd-t8', 'config': FGD, 'cfg_options': ['x.passes=8'],
     'twin': 'fgd', 'seeds': [0], 'map': [0.9]},
    {'suite': 'group', 'row': 'group-dro-kd', 'config': GROUP, 'twin': 'kd',
     'seeds': [0, 1], 'map': [0.266, 0.280], 'worst_group_map': [0.169, 0.181],
     'group_map': [{'plain': 0.3, 'photo': 0.169}, {'plain': 0.31, 'photo': 0.181}]},
    {'suite': 'digits', 'row': 'student', 'config': 'configs/demo/unlisted.py', 'twin': None,
     'seeds': [0], 'map': [0.3]},
]


def test_sync_writes_means_and_keeps_other_results(index):
    rows = load_accuracy(write_rows(index / 'accuracy.json', ROWS))
    report = sync_results(str(index / 'model-index.yml'), rows, 'accuracy.json')
    assert sorted(report['updated']) == [('fgd_x_digits', 'digits'), ('fgd_x_digits', 'glyphs'),
                                         ('group-dro-kd', 'group')]
    assert report['variants'] == [('digits', 'fgd-light'), ('glyphs', 'fgd-t8')]
    assert report['unlisted'] == [('digits', 'student')]

    (fgd,) = load_yaml(str(index / 'fgd.yml'))['Models']
    results = {r['Dataset']: r['Metrics'] for r in fgd['Results']}
    assert results == {'COCO': {'box AP': 40.7},  # the paper's, untouched
                       'digits': {'box AP': 35.9},  # mean(0.355, 0.349, 0.372) = 0.3587
                       'glyphs': {'box AP': 61.0}}
    sources = fgd['Metadata']['Results Source']
    assert sources['COCO'] == 'reported by the FGD paper, not trained here'
    assert sources['digits'] == ('measured here: mean of seeds [0, 1, 2] '
                                 '(accuracy.json, suite "digits", row "fgd")')
    (group,) = load_yaml(str(index / 'group.yml'))['Models']
    assert group['Results'] == [{'Task': 'Object Detection', 'Dataset': 'group',
                                 'Metrics': {'box AP': 27.3, 'worst-group box AP': 17.5}}]


def test_sync_again_replaces_instead_of_appending(index):
    path = write_rows(index / 'accuracy.json', ROWS[:1])
    sync_results(str(index / 'model-index.yml'), load_accuracy(path), 'accuracy.json')
    rows = [dict(ROWS[0], seeds=[0, 1, 2, 3], map=[0.355, 0.349, 0.372, 0.4])]
    path = write_rows(index / 'accuracy.json', rows)
    sync_results(str(index / 'model-index.yml'), load_accuracy(path), 'accuracy.json')
    (fgd,) = load_yaml(str(index / 'fgd.yml'))['Models']
    assert [r['Dataset'] for r in fgd['Results']] == ['COCO', 'digits']
    assert fgd['Results'][1]['Metrics'] == {'box AP': 36.9}


def test_two_plain_rows_for_one_config_are_ambiguous(index):
    rows = [ROWS[0], dict(ROWS[0], row='fgd-again')]
    with pytest.raises(ValueError, match="rows 'fgd' and 'fgd-again' of suite 'digits' both "
                                         'measure configs/fgd/fgd_x_digits.py'):
        sync_results(str(index / 'model-index.yml'), rows, 'accuracy.json')


@pytest.mark.parametrize('row,message', [
    ({'suite': 'digits', 'row': 'x', 'config': FGD, 'seeds': [0]}, r"row 0 lacks \['map'\]"),
    (dict(ROWS[0], map=[0.3, 0.4]),
     r'row 0 \(digits/fgd\): "map" should hold one value per seed \(3 seeds\)'),
    (dict(ROWS[0], seeds=[]), r'"seeds" should be a non-empty list of ints'),
    (dict(ROWS[4], worst_group_map=[0.1]),
     r'row 0 \(group/group-dro-kd\): "worst_group_map" should hold one value per seed'),
    (dict(ROWS[0], map=['0.3', 0.3, 0.3]), r'"map" should hold numbers'),
])
def test_malformed_rows_are_named(tmp_path, row, message):
    with pytest.raises(ValueError, match=message):
        load_accuracy(write_rows(tmp_path / 'accuracy.json', [row]))


def test_split_config():
    assert split_config('configs/x.py') == ('configs/x.py', ())
    assert split_config('configs/x.py --cfg-options a=1 b=2') == ('configs/x.py', ('a=1', 'b=2'))
    assert row_config(dict(config='configs/x.py', cfg_options=[])) == ('configs/x.py', ())
    assert row_config(dict(config='configs/x.py --cfg-options a=1', cfg_options=['b=2'])) == \
        ('configs/x.py', ('a=1', 'b=2'))


def test_sync_tool_end_to_end(index, load_tool, capsys):
    """The command validates what it wrote (here the small index's configs
    do not exist, so configs are not parsed: parse_configs=False)."""
    path = write_rows(index / 'accuracy.json', ROWS)
    load_tool('sync_metafiles').main(['--accuracy', path,
                                      '--index', str(index / 'model-index.yml')])
    out = capsys.readouterr().out
    assert 'updated  fgd_x_digits (digits)' in out
    assert 'skipped  digits/fgd-light: measures the config with --cfg-options' in out
    assert 'skipped  digits/student: no metafile entry names its config' in out
