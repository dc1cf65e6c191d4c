#!/usr/bin/env python
"""Kept versus rejected web images over KD^3's selection rounds, from a run's log.

    python tools/webly_selection_plot.py WORK_DIR [--pool data/glyphs_web] \
        [--out docs/webly_selection.png] [--examples 6] [--seed 0]

Reads ``WORK_DIR/web_selection.jsonl`` (one line per round, written by
``WebSelectionHook``) and, when the pool has one, its ground truth
(``POOL/annotations/web_truth.json``: which images show class glyphs;
training never reads it). Draws, per epoch, how many relevant and irrelevant
images were kept and rejected, with the teacher's share ``a(e)``, and a strip
of example images kept and rejected in the last round (green frame:
relevant, red: irrelevant). Prints the same numbers as a Markdown table for
``docs/webly.md``.
"""
import argparse
import json
import os.path as osp
import sys
from typing import Dict, List, Optional


def read_rounds(work_dir: str) -> List[dict]:
    """The rounds of ``WORK_DIR/web_selection.jsonl``, in order."""
    path = osp.join(work_dir, 'web_selection.jsonl')
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path} does not exist: is WORK_DIR a KD^3 run with '
                                'WebSelectionHook?')
    with open(path, encoding='utf-8') as f:
        rounds = [json.loads(line) for line in f if line.strip()]
    if not rounds:
        raise ValueError(f'{path} holds no selection round')
    return rounds


def read_truth(pool: str) -> Optional[dict]:
    """``{'relevant': {img_id: bool}, 'files': {img_id: path}}`` from a pool's
    truth file, or None when it has none."""
    path = osp.join(pool, 'annotations', 'web_truth.json')
    if not osp.isfile(path):
        return None
    with open(path, encoding='utf-8') as f:
        data = json.load(f)
    return dict(relevant={img['id']: bool(img['relevant']) for img in data['images']},
                files={img['id']: osp.join(pool, 'web', img['file_name'])
                       for img in data['images']})


def summarise(rounds: List[dict], relevant: Optional[Dict[int, bool]]) -> List[dict]:
    """Per round: epoch, a(e), pool size, kept; with the truth also the kept
    and rejected relevant and irrelevant images and the share of relevant
    images among the kept ones (``precision``) and kept (``recall``)."""
    out = []
    for r in rounds:
        row = dict(epoch=r['epoch'], iter=r['iter'], alpha=r['alpha'], pool=r['pool'],
                   kept=r['kept'])
        if relevant is not None:
            kept = set(r['kept_ids'])
            rel = {i for i, v in relevant.items() if v}
            irr = set(relevant) - rel
            row.update(kept_relevant=len(kept & rel), kept_irrelevant=len(kept & irr),
                       rejected_relevant=len(rel - kept), rejected_irrelevant=len(irr - kept))
            row['precision'] = row['kept_relevant'] / max(1, len(kept))
            row['recall'] = row['kept_relevant'] / max(1, len(rel))
        out.append(row)
    return out


def markdown(summary: List[dict]) -> str:
    """The summary as a Markdown table."""
    truth = 'kept_relevant' in summary[0]
    head = ['epoch', 'from iteration', 'a(e)', 'kept']
    if truth:
        head += ['relevant kept', 'irrelevant kept', 'relevant among kept']
    lines = ['| ' + ' | '.join(head) + ' |', '|' + '---|' * len(head)]
    for s in summary:
        cells = [str(s['epoch']), str(s['iter']), f'{s["alpha"]:.2f}',
                 f'{s["kept"]} / {s["pool"]}']
        if truth:
            rel = s['kept_relevant'] + s['rejected_relevant']
            irr = s['kept_irrelevant'] + s['rejected_irrelevant']
            cells += [f'{s["kept_relevant"]} / {rel}', f'{s["kept_irrelevant"]} / {irr}',
                      f'{100 * s["precision"]:.0f} %']
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def plot(summary: List[dict], out: str, truth: Optional[dict], last: dict,
         examples: int = 6, seed: int = 0) -> None:
    """Bars per round and, with the truth, kept/rejected examples of ``last``."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import numpy as np
    from PIL import Image

    show = truth is not None and examples > 0
    fig = plt.figure(figsize=(11, 4.2 if show else 3.6))
    ax = fig.add_axes([0.06, 0.14, 0.4 if show else 0.88, 0.76])
    x = np.arange(len(summary))
    if truth is not None:
        parts = [('kept_relevant', 'kept, relevant', '#2ca02c'),
                 ('kept_irrelevant', 'kept, irrelevant', '#d62728'),
                 ('rejected_relevant', 'rejected, relevant', '#98df8a'),
                 ('rejected_irrelevant', 'rejected, irrelevant', '#ff9896')]
    else:
        for s in summary:
            s['rejected'] = s['pool'] - s['kept']
        parts = [('kept', 'kept', '#2ca02c'), ('rejected', 'rejected', '#bbbbbb')]
    bottom = np.zeros(len(summary))
    for key, label, colour in parts:
        values = np.array([s[key] for s in summary], dtype=float)
        ax.bar(x, values, bottom=bottom, color=colour, label=label, width=0.7)
        bottom += values
    ax.set_xticks(x, [f'{s["epoch"]}\na={s["alpha"]:.2f}' for s in summary])
    ax.set_xlabel('epoch (selection round) and the teacher\'s share a(e)')
    ax.set_ylabel('web images')
    ax.set_title('KD^3 selection of the web pool')
    ax.legend(fontsize=7, loc='lower right')
    if show:
        rng = np.random.default_rng(seed)
        kept = set(last['kept_ids'])
        ids = sorted(truth['relevant'])
        rows = [('kept', [i for i in ids if i in kept]),
                ('rejected', [i for i in ids if i not in kept])]
        for r, (name, pick) in enumerate(rows):
            chosen = sorted(rng.choice(pick, min(examples, len(pick)), replace=False)) \
                if pick else []
            for c, img_id in enumerate(chosen):
                w = 0.5 / examples
                sub = fig.add_axes([0.49 + c * w, 0.52 - r * 0.42, w * 0.94, 0.36])
                sub.imshow(Image.open(truth['files'][img_id]).convert('RGB'))
                sub.set_xticks([]), sub.set_yticks([])
                colour = '#2ca02c' if truth['relevant'][img_id] else '#d62728'
                for spine in sub.spines.values():
                    spine.set_color(colour)
                    spine.set_linewidth(3)
                if c == 0:
                    sub.set_ylabel(f'{name}\n(epoch {last["epoch"]})', fontsize=8)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('work_dir', help='the run folder holding web_selection.jsonl')
    p.add_argument('--pool', default='data/glyphs_web',
                   help='the web pool folder (its annotations/web_truth.json says which '
                        'images are relevant; optional)')
    p.add_argument('--out', default='docs/webly_selection.png')
    p.add_argument('--examples', type=int, default=6, help='example images per row')
    p.add_argument('--seed', type=int, default=0, help='which examples')
    args = p.parse_args(argv)
    try:
        rounds = read_rounds(args.work_dir)
    except (FileNotFoundError, ValueError) as e:
        p.error(str(e))
    truth = read_truth(args.pool)
    summary = summarise(rounds, truth and truth['relevant'])
    plot(summary, args.out, truth, rounds[-1], args.examples, args.seed)
    print(markdown(summary))
    print(f'\nwrote {args.out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
