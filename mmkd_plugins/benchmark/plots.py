"""The benchmark's picture: absolute mAP per row, and each row's paired
difference to its twin with its 95 % interval."""
from typing import List


def plot_suite(table: List[dict], path: str, title: str,
               metric: str = 'COCO mAP (val)') -> None:
    """Two panels from :func:`.tables.suite_table`'s (or
    :func:`.tables.group_table`'s) rows: ``metric`` (bars = mean, dots =
    seeds, dashed line = teacher) and Δ vs twin (dots = seeds, bar = the
    95 % interval of the mean)."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    rows = [r for r in table if r['row'] != 'teacher']
    teacher = next((r for r in table if r['row'] == 'teacher'), None)
    paired = [r for r in rows if r.get('_paired')]
    fig, axes = plt.subplots(1, 2, figsize=(4 + 1.1 * len(rows), 3.6),
                             gridspec_kw=dict(width_ratios=[len(rows), max(1, len(paired))]))
    ax = axes[0]
    for i, r in enumerate(rows):
        maps = [100 * m for m in r['_maps']]
        ax.bar(i, sum(maps) / len(maps), color='#7aa6c2')
        ax.scatter([i] * len(maps), maps, color='k', s=9, zorder=3)
    if teacher:
        ax.axhline(100 * teacher['_maps'][0], color='#c0392b', ls='--',
                   label=f'teacher {100 * teacher["_maps"][0]:.1f}')
        ax.legend(loc='lower right', fontsize=8)
    lo = min(100 * min(r['_maps']) for r in rows)
    ax.set_ylim(max(0, lo - 5), None)
    ax.set_xticks(range(len(rows)), [r['row'] for r in rows], rotation=30, ha='right')
    ax.set_ylabel(f'{metric}, points')
    ax.set_title(title, fontsize=9)
    ax = axes[1]
    for i, r in enumerate(paired):
        p = r['_paired']
        diffs = [100 * d for d in p['diffs']]
        colour = {'above': '#27ae60', 'below': '#c0392b'}.get(p['verdict'], '#7f8c8d')
        if p['ci'] is not None:
            ax.plot([i, i], [100 * p['ci'][0], 100 * p['ci'][1]], color=colour, lw=6, alpha=0.4)
        ax.scatter([i] * len(diffs), diffs, color='k', s=9, zorder=3)
        ax.scatter([i], [100 * p['mean']], color=colour, marker='_', s=200, zorder=4)
    ax.axhline(0, color='k', lw=0.8)
    ax.set_xticks(range(len(paired)), [f'{r["row"]}\n− {r["twin"]}' for r in paired],
                  rotation=30, ha='right', fontsize=8)
    ax.set_ylabel(f'Δ {metric} vs twin (points), 95 % CI', fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
