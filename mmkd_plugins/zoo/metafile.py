"""Read, write and check OpenMMLab metafiles and the model index.

The schema is MMDetection's: a root ``model-index.yml`` imports one
``configs/<method>/metafile.yml`` per method, each holding ``Collections``
(paper, training techniques) and ``Models`` (name, config, metadata,
results, weights). Paths in a metafile (``Config``, ``README``) are relative
to the folder of the ``model-index.yml`` that imports it, as in MMDetection.
Two conventions are added through free-form fields that the schema allows:

* ``Metadata: Results Source: {<dataset>: <text>}`` says, for every
  ``Dataset`` in ``Results``, whether its numbers were measured here or
  reported by a paper;
* a measured result's ``Dataset`` is the accuracy suite it was measured in
  (``digits``, ``group``, ... of ``docs/accuracy.json``).

Files are written in one canonical layout (:func:`dump_metafile`), the one
the checked-in metafiles use, so that a tool rewriting a metafile shows in
``git diff`` only what it changed.
"""
import os.path as osp
import re
from typing import Dict, Iterator, List, Optional, Tuple

import yaml

TASK = 'Object Detection'
SOURCE_KEY = 'Results Source'


class _Dumper(yaml.SafeDumper):
    """Block style with list items indented under their key, as
    MMDetection's metafiles are written."""

    def increase_indent(self, flow=False, indentless=False):
        return super().increase_indent(flow, False)


def load_yaml(path: str) -> dict:
    """A metafile or model index as a dict; an error names the file."""
    try:
        with open(path, encoding='utf-8') as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise ValueError(f'{path} is not valid YAML: {e}') from e
    if not isinstance(data, dict):
        raise ValueError(f'{path} should hold a mapping (Collections/Models or Import), '
                         f'got {type(data).__name__}')
    return data


def dump_metafile(data: dict, path: str) -> None:
    """Write ``data`` in the canonical layout: keys in their order, lists
    indented, a blank line between top-level sections and between models."""
    text = yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=False, width=4096)
    # A blank line before every top-level key but the first, and between
    # collections and between models.
    text = re.sub(r'\n(?=[A-Z][^\n]*:)', '\n\n', text)
    text = re.sub(r'\n(?=  - Name: )', '\n\n', text)
    text = re.sub(r'(:\n)\n(  - Name: )', r'\1\2', text)
    with open(path, 'w', encoding='utf-8') as f:
        f.write(text)


def metafile_paths(index_path: str) -> List[str]:
    """Absolute paths of the metafiles a ``model-index.yml`` imports."""
    index = load_yaml(index_path)
    imports = index.get('Import')
    if not isinstance(imports, list) or not imports:
        raise ValueError(f'{index_path}: "Import" should list the metafiles, got {imports!r}')
    root = osp.dirname(osp.abspath(index_path))
    return [osp.join(root, p) for p in imports]


def iter_models(index_path: str) -> Iterator[Tuple[str, dict]]:
    """``(metafile path, model dict)`` for every model of the index."""
    for path in metafile_paths(index_path):
        for model in load_yaml(path).get('Models') or []:
            yield path, model


def collections(index_path: str) -> Dict[str, dict]:
    """Every collection of the index by name."""
    found = {}
    for path in metafile_paths(index_path):
        for col in load_yaml(path).get('Collections') or []:
            found[col['Name']] = col
    return found


def find_model(index_path: str, config: str) -> Optional[dict]:
    """The model whose ``Config`` is the file ``config`` (any path to it)."""
    root = osp.dirname(osp.abspath(index_path))
    target = osp.realpath(config)
    for _, model in iter_models(index_path):
        if osp.realpath(osp.join(root, model.get('Config', ''))) == target:
            return model
    return None


def set_result(model: dict, dataset: str, metrics: Dict[str, float], source: str) -> None:
    """Put ``metrics`` on ``dataset`` into a model entry, replacing that
    dataset's previous result and source and keeping the others."""
    results = [r for r in model.get('Results') or [] if r.get('Dataset') != dataset]
    results.append({'Task': TASK, 'Dataset': dataset, 'Metrics': dict(metrics)})
    model['Results'] = results
    meta = model.setdefault('Metadata', {})
    meta.setdefault(SOURCE_KEY, {})[dataset] = source


def upsert_model(metafile: str, model: dict, collection: Optional[dict] = None) -> None:
    """Write ``model`` into ``metafile`` (created if missing), replacing the
    entry of the same ``Name``; ``collection``, when given, is added unless
    one of its name is already there."""
    data = load_yaml(metafile) if osp.isfile(metafile) else {}
    if collection is not None:
        cols = data.setdefault('Collections', [])
        if not any(c.get('Name') == collection['Name'] for c in cols):
            cols.append(collection)
    models = data.setdefault('Models', [])
    names = [m.get('Name') for m in models]
    if model['Name'] in names:
        models[names.index(model['Name'])] = model
    else:
        models.append(model)
    # Collections first, as in every OpenMMLab metafile.
    dump_metafile({k: data[k] for k in ('Collections', 'Models') if k in data}, metafile)


def _config_errors(where: str, model: dict, path: str) -> List[str]:
    """The config exists, parses, and its schedule matches the metadata."""
    from mmengine.config import Config
    if not osp.isfile(path):
        return [f'{where}: Config {model.get("Config")!r} does not exist ({path})']
    try:
        cfg = Config.fromfile(path)
    except Exception as e:  # any parse error is the finding itself
        return [f'{where}: Config {model.get("Config")!r} does not parse: '
                f'{type(e).__name__}: {e}']
    errors = []
    meta = model.get('Metadata') or {}
    train_cfg = cfg.get('train_cfg') or {}
    for key, cfg_key in (('Epochs', 'max_epochs'), ('Iterations', 'max_iters')):
        if key in meta and train_cfg.get(cfg_key) != meta[key]:
            errors.append(f'{where}: Metadata.{key} is {meta[key]} but the config\'s '
                          f'train_cfg.{cfg_key} is {train_cfg.get(cfg_key)}')
    return errors


def validate_index(index_path: str, parse_configs: bool = True) -> List[str]:
    """Every problem of a model index and the metafiles it imports, as
    messages naming the file, the model and the key; empty when valid.

    Checks what the ``model-index`` library checks (as ``mi check`` does in
    OpenMMLab's CI), then what the library does not: unique model names, a
    known collection, local ``Weights`` that exist, a ``Config`` that exists
    and parses (with ``parse_configs``) and whose schedule matches
    ``Epochs``/``Iterations``, and a ``Results Source`` for every result's
    dataset.
    """
    from modelindex import load
    errors = list(load(index_path).check(silent=True) or [])
    root = osp.dirname(osp.abspath(index_path))
    known = collections(index_path)
    seen = {}
    for metafile, model in iter_models(index_path):
        name = model.get('Name')
        where = f'{osp.relpath(metafile, root)}: model {name!r}'
        if name in seen:
            errors.append(f'{where}: Name also used in {seen[name]}')
        seen[name] = osp.relpath(metafile, root)
        if model.get('In Collection') not in known:
            errors.append(f'{where}: In Collection {model.get("In Collection")!r} is not a '
                          f'collection of the index ({sorted(known)})')
        if not isinstance(model.get('Results'), list):
            errors.append(f'{where}: Results should be a list (empty when nothing is known)')
            continue
        sources = (model.get('Metadata') or {}).get(SOURCE_KEY) or {}
        for result in model['Results']:
            if result.get('Dataset') not in sources:
                errors.append(f'{where}: Metadata.{SOURCE_KEY} does not say where the '
                              f'{result.get("Dataset")!r} result comes from')
        weights = model.get('Weights')
        if weights and '://' not in weights and not osp.isfile(osp.join(root, weights)):
            errors.append(f'{where}: Weights {weights!r} is neither a URL nor a file '
                          f'({osp.join(root, weights)})')
        if 'Config' not in model:
            errors.append(f'{where}: no Config')
        elif parse_configs:
            errors += _config_errors(where, model, osp.join(root, model['Config']))
    return errors
