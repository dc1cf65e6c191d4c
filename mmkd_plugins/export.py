"""Turn a distillation run into a plain MMDetection model.

:func:`export_student` writes a student-only checkpoint and a standalone
config. Plain MMDetection loads both (``tools/test.py``, ``init_detector``)
without mmkd_plugins installed. The checkpoint holds only tensors and plain
Python data, so ``torch.load(..., weights_only=True)`` reads it on any
torch >= 2.6.
"""
import hashlib
import json
import os
import os.path as osp
import warnings
from typing import Any, Dict, List

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmdet.registry import DATASETS, HOOKS, METRICS, MODELS, TRANSFORMS
from .compat import load_checkpoint_file
from .distillers.detection_distiller import build_detector_cfg

_REGISTRIES = (MODELS, HOOKS, DATASETS, METRICS, TRANSFORMS)


def _is_plugin_type(type_name: Any) -> bool:
    if not isinstance(type_name, str):
        return False
    for registry in _REGISTRIES:
        cls = registry.get(type_name)
        if cls is not None:
            return cls.__module__.startswith('mmkd_plugins')
    return False


def _plain_types(obj: Any) -> Any:
    """``obj`` with every mmkd_plugins type that declares ``exported_as``
    (e.g. the web pool dataset and its sampler, which only add checks and a
    selection to an MMDetection class) replaced by that MMDetection type."""
    if isinstance(obj, dict):
        out = {k: _plain_types(v) for k, v in obj.items()}
        if _is_plugin_type(obj.get('type')):
            cls = next(r.get(obj['type']) for r in _REGISTRIES if r.get(obj['type']))
            if getattr(cls, 'exported_as', None):
                out['type'] = cls.exported_as
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain_types(v) for v in obj)
    return obj


def _plugin_types(obj: Any) -> List[str]:
    """Every ``type`` in a config tree that only mmkd_plugins registers."""
    found = []
    if isinstance(obj, dict):
        if _is_plugin_type(obj.get('type')):
            found.append(obj['type'])
        for value in obj.values():
            found += _plugin_types(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            found += _plugin_types(value)
    return found


def _plain(obj: Any) -> Any:
    """``obj`` as JSON-able builtins (tuples become lists), for a checkpoint
    that loads with ``weights_only=True``."""
    return json.loads(json.dumps(obj, default=str))


def sha256_of(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _trains_without_images(cfg: Config) -> bool:
    """Whether ``cfg`` trains from generated images (data-free distillation)."""
    from .datasets import DataFreeDataset
    kind = ((cfg.get('train_dataloader') or {}).get('dataset') or {}).get('type')
    return kind is not None and DATASETS.get(kind) is DataFreeDataset


def standalone_student_config(cfg: Config) -> Config:
    """The distillation config with ``model`` replaced by the student, the
    distillation-only parts (its hooks, ``custom_imports`` of mmkd_plugins,
    ``load_from``/``resume``, and a data-free run's training setup) removed,
    and mmkd_plugins types that declare ``exported_as`` written as that
    MMDetection type."""
    from .distillers import is_distiller_type
    if not is_distiller_type(cfg.model.get('type')):
        raise ValueError(f'model.type is {cfg.model.get("type")!r}, not '
                         'DetectionDistiller: there is no student to export')
    out = Config(_plain_types(cfg.to_dict()))
    out.model = build_detector_cfg(cfg.model.student, 'model.student')
    out.load_from = None
    out.resume = False
    if _trains_without_images(out):
        # A data-free run's training setup (an image-free loader, two
        # optimisers, the generator's schedule) means nothing without its
        # generator. The export tests and infers; mmengine wants the three
        # training entries all present or all absent.
        for key in ('train_dataloader', 'train_cfg', 'optim_wrapper', 'param_scheduler'):
            out.pop(key, None)
    hooks = [h for h in out.get('custom_hooks', []) if not _is_plugin_type(h.get('type'))]
    out.custom_hooks = hooks
    for name, hook in list(out.get('default_hooks', {}).items()):
        if isinstance(hook, dict) and _is_plugin_type(hook.get('type')):
            out.default_hooks.pop(name)
    leftover = sorted(set(_plugin_types(out.to_dict())))
    imports = out.get('custom_imports', {}).get('imports', [])
    imports = [imports] if isinstance(imports, str) else list(imports)
    kept = [i for i in imports if not i.startswith('mmkd_plugins')]
    if leftover:
        warnings.warn(f'the exported config still uses mmkd_plugins types '
                      f'{leftover}; loading it needs mmkd_plugins installed')
    elif 'custom_imports' in out:
        if kept:
            out.custom_imports = dict(out.custom_imports, imports=kept)
        else:
            out.pop('custom_imports')
    return out


def export_student(config: str, checkpoint: str, out_dir: str,
                   publish: bool = False) -> Dict[str, str]:
    """Write ``<out_dir>/<name>.pth`` (student weights) and ``<name>.py``.

    Args:
        config (str): The distillation config the checkpoint was trained with.
        checkpoint (str): A training checkpoint of that config.
        out_dir (str): Output folder (created).
        publish (bool): Name the checkpoint ``<name>-<sha256[:8]>.pth``, as
            model zoos do.

    Returns:
        dict: ``{'checkpoint': path, 'config': path, 'sha256': hex}``.
    """
    cfg = Config.fromfile(config)
    # Registry look-ups (plugin types, building the student) need MMDetection's
    # modules imported, which its default scope does; a bare CLI has none.
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    student_cfg = standalone_student_config(cfg)
    ckpt = load_checkpoint_file(checkpoint, map_location='cpu')
    state = ckpt.get('state_dict', ckpt)
    student_state = {k[len('student.'):]: v for k, v in state.items()
                     if k.startswith('student.')}
    if not student_state:
        raise ValueError(f'{checkpoint} holds no student weights (keys '
                         '"student.*"); is it a DetectionDistiller checkpoint?')
    # Prove the weights fit the exported config before writing anything.
    model = MODELS.build(student_cfg.model)
    result = model.load_state_dict(student_state, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(f'student weights do not fit model.student: missing '
                         f'{result.missing_keys[:3]}, unexpected {result.unexpected_keys[:3]}')
    meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
    out_meta = _plain({
        'dataset_meta': meta.get('dataset_meta'),
        'exported_from': {'config': osp.abspath(config),
                          'checkpoint': osp.abspath(checkpoint),
                          'epoch': meta.get('epoch'), 'iter': meta.get('iter')},
    })
    os.makedirs(out_dir, exist_ok=True)
    name = osp.splitext(osp.basename(config))[0] + '_student'
    cfg_path = osp.join(out_dir, name + '.py')
    student_cfg.dump(cfg_path)
    ckpt_path = osp.join(out_dir, name + '.pth')
    torch.save({'state_dict': {k: v.detach().cpu().contiguous() for k, v in student_state.items()},
                'meta': out_meta}, ckpt_path)
    digest = sha256_of(ckpt_path)
    if publish:
        final = osp.join(out_dir, f'{name}-{digest[:8]}.pth')
        os.replace(ckpt_path, final)
        ckpt_path = final
    return {'checkpoint': ckpt_path, 'config': cfg_path, 'sha256': digest}
