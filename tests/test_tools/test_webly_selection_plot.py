"""tools/webly_selection_plot.py on a fake run log over a tiny web pool."""
import json

import pytest


@pytest.fixture(scope='module')
def pool(tmp_path_factory):
    from mmkd_plugins.synthetic.glyphs_web import generate_glyphs_web
    root = tmp_path_factory.mktemp('pool')
    generate_glyphs_web(str(root), images=8, image_size=48, height_range=(8, 20), seed=1)
    truth = json.loads((root / 'annotations' / 'web_truth.json').read_text())
    relevant = sorted(i['id'] for i in truth['images'] if i['relevant'])
    irrelevant = sorted(i['id'] for i in truth['images'] if not i['relevant'])
    return str(root), relevant, irrelevant


def fake_run(tmp_path, relevant, irrelevant):
    """Round 0 keeps 4 relevant images and 1 irrelevant one, round 1 all 6
    relevant ones and no irrelevant one."""
    rounds = [dict(epoch=0, iter=0, alpha=0.94, pool=8, kept=5,
                   kept_ids=relevant[:4] + irrelevant[:1]),
              dict(epoch=1, iter=375, alpha=0.71, pool=8, kept=6, kept_ids=relevant)]
    work = tmp_path / 'run'
    work.mkdir()
    (work / 'web_selection.jsonl').write_text(''.join(json.dumps(r) + '\n' for r in rounds))
    return str(work)


def test_summary_and_picture(load_tool, pool, tmp_path, capsys):
    tool = load_tool('webly_selection_plot')
    root, relevant, irrelevant = pool
    assert (len(relevant), len(irrelevant)) == (6, 2)  # 25 % of 8
    work = fake_run(tmp_path, relevant, irrelevant)
    summary = tool.summarise(tool.read_rounds(work), tool.read_truth(root)['relevant'])
    assert [(s['kept_relevant'], s['kept_irrelevant'], s['rejected_relevant'],
             s['rejected_irrelevant']) for s in summary] == [(4, 1, 2, 1), (6, 0, 0, 2)]
    assert [s['precision'] for s in summary] == pytest.approx([4 / 5, 1.0])
    assert [s['recall'] for s in summary] == pytest.approx([4 / 6, 1.0])
    out = tmp_path / 'selection.png'
    assert tool.main([work, '--pool', root, '--out', str(out), '--examples', '2']) == 0
    assert out.stat().st_size > 5000
    text = capsys.readouterr().out
    assert '| 0 | 0 | 0.94 | 5 / 8 | 4 / 6 | 1 / 2 | 80 % |' in text
    assert '| 1 | 375 | 0.71 | 6 / 8 | 6 / 6 | 0 / 2 | 100 % |' in text


def test_without_truth_and_errors(load_tool, pool, tmp_path, capsys):
    tool = load_tool('webly_selection_plot')
    _, relevant, irrelevant = pool
    work = fake_run(tmp_path, relevant, irrelevant)
    out = tmp_path / 'bars.png'
    assert tool.main([work, '--pool', str(tmp_path / 'none'), '--out', str(out)]) == 0
    assert out.stat().st_size > 3000
    assert '| 1 | 375 | 0.71 | 6 / 8 |' in capsys.readouterr().out
    with pytest.raises(SystemExit):
        tool.main([str(tmp_path), '--out', str(out)])
    assert 'web_selection.jsonl does not exist' in capsys.readouterr().err
