"""Measured accuracy into the metafiles: ``docs/accuracy.json`` -> ``Results``.

``docs/accuracy.json`` (written by the accuracy benchmark) is a list of
table rows::

    {"suite": "digits", "row": "fgd", "config": "configs/fgd/<name>.py",
     "twin": "student", "seeds": [0, 1, 2], "map": [0.355, 0.349, 0.372],
     "worst_group_map": [...], "group_map": [{"plain": 0.43, ...}, ...]}

``config`` may go on with `` --cfg-options ...``, or the row may carry a
non-empty ``cfg_options`` list: such a row measures a variant of the config, not the config a metafile entry names, so it never
sets that entry's results. :func:`sync_results` puts every other row into
the entry whose ``Config`` is the row's path, as the result for the dataset
named after the suite, and leaves the other datasets' results (a paper's
COCO numbers) alone. Running it again after the benchmark adds rows keeps
the metafiles in step with the table.
"""
import json
from typing import Dict, List, Tuple

from .metafile import dump_metafile, load_yaml, metafile_paths, set_result

_REQUIRED = ('suite', 'row', 'config', 'seeds', 'map')


def split_config(text: str) -> Tuple[str, Tuple[str, ...]]:
    """``'configs/x.py --cfg-options a=1 b=2'`` -> ``('configs/x.py', ('a=1', 'b=2'))``."""
    tokens = text.split()
    return tokens[0], tuple(t for t in tokens[1:] if t != '--cfg-options')


def row_config(row: dict) -> Tuple[str, Tuple[str, ...]]:
    """A row's config path and the options that make it a variant: those
    after ``--cfg-options`` in ``config`` and those in ``cfg_options`` (the
    accuracy harness writes them there)."""
    path, extras = split_config(row['config'])
    return path, extras + tuple(row.get('cfg_options') or ())


def _per_seed(row: dict, key: str, where: str) -> List[float]:
    values = row[key]
    if not isinstance(values, list) or len(values) != len(row['seeds']):
        raise ValueError(f'{where}: "{key}" should hold one value per seed '
                         f'({len(row["seeds"])} seeds), got {values!r}')
    if not all(isinstance(v, (int, float)) for v in values):
        raise ValueError(f'{where}: "{key}" should hold numbers, got {values!r}')
    return [float(v) for v in values]


def load_accuracy(path: str) -> List[dict]:
    """The rows of an accuracy file, checked; an error names the row and key."""
    with open(path, encoding='utf-8') as f:
        rows = json.load(f)
    if not isinstance(rows, list):
        raise ValueError(f'{path} should hold a list of rows, got {type(rows).__name__}')
    for i, row in enumerate(rows):
        where = f'{path}: row {i}'
        missing = [k for k in _REQUIRED if k not in row]
        if missing:
            raise ValueError(f'{where} lacks {missing}')
        where += f' ({row["suite"]}/{row["row"]})'
        if not row['seeds'] or not all(isinstance(s, int) for s in row['seeds']):
            raise ValueError(f'{where}: "seeds" should be a non-empty list of ints, '
                             f'got {row["seeds"]!r}')
        _per_seed(row, 'map', where)
        if 'worst_group_map' in row:
            _per_seed(row, 'worst_group_map', where)
    return rows


def row_metrics(row: dict) -> Dict[str, float]:
    """A row's metafile metrics: the mean over seeds, in percent as
    MMDetection's metafiles give ``box AP``."""
    def mean(key):
        values = row[key]
        return round(100 * sum(values) / len(values), 1)

    metrics = {'box AP': mean('map')}
    if row.get('worst_group_map') is not None:
        metrics['worst-group box AP'] = mean('worst_group_map')
    return metrics


def sync_results(index_path: str, rows: List[dict], source_name: str) -> Dict[str, list]:
    """Write every row's mean mAP into the metafile entry of its config.

    Args:
        index_path (str): The ``model-index.yml`` whose metafiles to update.
        rows (list[dict]): Rows as :func:`load_accuracy` returns them.
        source_name (str): How the ``Results Source`` text names the file.

    Returns:
        dict: ``updated``: ``(model name, suite)`` pairs written;
        ``variants``: rows left out because they carry ``--cfg-options``;
        ``unlisted``: rows whose config no metafile entry names.
    """
    plain: Dict[Tuple[str, str], dict] = {}
    report = {'updated': [], 'variants': [], 'unlisted': []}
    for row in rows:
        path, extras = row_config(row)
        if extras:
            report['variants'].append((row['suite'], row['row']))
            continue
        key = (path, row['suite'])
        if key in plain:
            raise ValueError(f'rows {plain[key]["row"]!r} and {row["row"]!r} of suite '
                             f'{row["suite"]!r} both measure {path} without options: '
                             'which one is the entry\'s result is ambiguous')
        plain[key] = row
    used = set()
    for metafile in metafile_paths(index_path):
        data = load_yaml(metafile)
        changed = False
        for model in data.get('Models') or []:
            for (path, suite), row in plain.items():
                if path != model.get('Config'):
                    continue
                source = (f'measured here: mean of seeds {row["seeds"]} '
                          f'({source_name}, suite "{suite}", row "{row["row"]}")')
                set_result(model, suite, row_metrics(row), source)
                report['updated'].append((model['Name'], suite))
                used.add((path, suite))
                changed = True
        if changed:
            dump_metafile(data, metafile)
    report['unlisted'] = [(suite, row['row']) for (path, suite), row in plain.items()
                          if (path, suite) not in used]
    return report
