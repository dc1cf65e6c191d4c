"""Model card text and its place in docs/model_zoo.md."""
from mmkd_plugins.zoo.card import headline, write_card


def test_headline():
    student = {'flops': 0.25e9, 'ms_per_img': 10.0}
    teacher = {'flops': 1.0e9, 'ms_per_img': 32.0}
    assert headline(35.5, 40.0, student, teacher) == (
        "The student keeps 89 % of the teacher's mAP at 25 % of its FLOPs and 3.2x its speed.")


def test_write_card_replaces_its_own_card_only(tmp_path):
    doc = tmp_path / 'model_zoo.md'
    write_card(str(doc), 'a', 'card A v1')
    write_card(str(doc), 'b', 'card B')
    write_card(str(doc), 'a', 'card A v2')
    text = doc.read_text()
    assert text == ('# Model zoo\n\n'
                    '<!-- card:a:start -->\ncard A v2\n<!-- card:a:end -->\n\n'
                    '<!-- card:b:start -->\ncard B\n<!-- card:b:end -->\n')


def test_write_card_keeps_the_text_around_it(tmp_path):
    doc = tmp_path / 'model_zoo.md'
    doc.write_text('# Zoo\n\nIntro.\n\n<!-- card:a:start -->\nold\n<!-- card:a:end -->\n\nOutro.\n')
    write_card(str(doc), 'a', 'new \\1 text')  # backslashes are text, not regex groups
    assert doc.read_text() == ('# Zoo\n\nIntro.\n\n<!-- card:a:start -->\nnew \\1 text\n'
                               '<!-- card:a:end -->\n\nOutro.\n')
