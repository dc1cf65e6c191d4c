"""A model zoo entry for an exported student (``mmkd-export --publish``).

:func:`publish_student` exports the student (:func:`mmkd_plugins.export.export_student`)
and writes its entry into ``<out>/metafile.yml``, with ``<out>/model-index.yml``
importing it, so that the export folder is a small model zoo of its own that
the ``model-index`` library reads and validates. The entry, in MMDetection's
schema, holds:

* ``Name``, ``Config`` (the exported standalone config, which loads the
  weights in plain MMDetection), ``In Collection`` (the method, with its
  collection copied from the package's index) and ``Weights`` (the file whose
  name carries its sha256 prefix, or a URL; the full digest in
  ``Metadata.Weights SHA256``);
* ``Results``: the run's last validation metrics;
* ``Metadata``: the distillation config and teacher, iterations or epochs,
  ``Training Memory (GB)`` when the run logged it (mmengine logs memory on
  CUDA only), and the student's ``Parameters``, ``FLOPs`` and
  ``inference time (ms/im)`` (:mod:`.cost`).
"""
import glob
import json
import os.path as osp
from typing import Dict, Optional

from .metafile import SOURCE_KEY, TASK, collections, dump_metafile, find_model, upsert_model
from .resources import package_root


def shipped_config_name(path: str) -> str:
    """``configs/<folder>/<name>.py`` for a config shipped in the package
    (how the package's metafiles name it), the absolute path otherwise."""
    path = osp.realpath(path)
    # realpath: in a checkout .mim/configs is a symlink to the repository's.
    rel = osp.relpath(path, osp.realpath(osp.join(package_root(), 'configs')))
    return path if rel.startswith('..') else 'configs/' + rel


def dataset_name(cfg) -> str:
    """The validation data's name: the last folder of its ``data_root``
    (``COCO`` for MMDetection's ``data/coco/``)."""
    data_root = cfg.val_dataloader.dataset.get('data_root') or ''
    name = osp.basename(osp.normpath(data_root)) if data_root else 'unknown'
    return 'COCO' if name.lower() == 'coco' else name


def run_record(checkpoint: str) -> Dict:
    """What a training run logged next to ``checkpoint`` (its work dir):
    the last validation metrics, the peak ``memory`` (MB) of the training
    log when there is one, and the teacher's metrics of ``TeacherEvalHook``."""
    from ..experiment import final_metrics
    work_dir = osp.dirname(osp.abspath(checkpoint))
    record = {'work_dir': work_dir, 'metrics': final_metrics(work_dir), 'memory_mb': None,
              'teacher': None}
    logs = sorted(glob.glob(osp.join(work_dir, '*', 'vis_data', 'scalars.json')))
    with open(logs[-1]) as f:
        memory = [json.loads(line).get('memory') for line in f]
    memory = [m for m in memory if m is not None]
    if memory:
        record['memory_mb'] = max(memory)
    teacher = sorted(glob.glob(osp.join(work_dir, '*', 'teacher_metrics.json')))
    if teacher:
        with open(teacher[-1]) as f:
            record['teacher'] = json.load(f)
    return record


def _results(metrics: Dict[str, float], prefix: str = 'coco/') -> Dict[str, float]:
    """MMDetection's metafile metrics (percent) from logged ``coco/`` keys."""
    names = {'bbox_mAP': 'box AP', 'bbox_mAP_50': 'AP50', 'bbox_mAP_75': 'AP75'}
    return {out: round(100 * metrics[prefix + key], 1) for key, out in names.items()
            if prefix + key in metrics}


def _teacher(cfg, record: Dict) -> Dict:
    """The teacher as trained: its config, weights and logged mAP."""
    teacher = cfg.model.teacher
    if not isinstance(teacher, str):
        config = 'model.teacher of the distillation config'  # a model dict
    elif osp.isfile(teacher):
        config = shipped_config_name(teacher)
    else:
        config = teacher  # an mmdet:: name
    entry = {'Config': config, 'Weights': cfg.model.get('teacher_ckpt')}
    if record['teacher']:
        entry.update(_results(record['teacher'], prefix='teacher/coco/'))
    return entry


def zoo_entry(cfg, config: str, record: Dict, exported: Dict, collection: str,
              cost: Dict, device: str, weights_url: Optional[str] = None,
              dataset: Optional[str] = None, iteration: Optional[int] = None,
              epoch: Optional[int] = None) -> Dict:
    """The metafile entry of an exported student (see the module doc).

    Args:
        cfg (Config): The distillation config as trained (with any
            ``--cfg-options`` applied).
        config (str): Its file.
        record (dict): :func:`run_record` of the training checkpoint.
        exported (dict): :func:`export_student`'s return value.
        collection (str): The method's collection name.
        cost (dict): The student's :func:`.cost.inference_cost` entry.
        device (str): The device ``cost`` was timed on.
        weights_url (str, optional): Where the weights will be downloadable;
            ``Weights`` is that URL plus the file name. By default the file
            name, relative to the export folder.
        dataset (str, optional): The results' dataset; by default
            :func:`dataset_name`.
        iteration, epoch (int, optional): Where the checkpoint was taken.
    """
    import torch

    from .cost import device_name
    dataset = dataset or dataset_name(cfg)
    weights = osp.basename(exported['checkpoint'])
    meta = {'Distillation Config': shipped_config_name(config),
            'Teacher': _teacher(cfg, record),
            'Training Data': dataset}
    # An epoch-based schedule (max_epochs) is given in epochs, as in MMDetection.
    if 'max_epochs' in (cfg.get('train_cfg') or {}):
        meta['Epochs'] = epoch
    else:
        meta['Iterations'] = iteration
    if record['memory_mb'] is not None:
        meta['Training Memory (GB)'] = round(record['memory_mb'] / 1024, 2)
    h, w = cost['input_shape']
    meta.update({
        'Parameters': cost['params'],
        'FLOPs': cost['flops'],
        'inference time (ms/im)': [{
            'value': round(cost['ms_per_img'], 2), 'hardware': device_name(device),
            'backend': f'PyTorch {torch.__version__}', 'batch size': 1,
            'mode': 'FP32', 'resolution': f'({h}, {w})'}],
        'Weights SHA256': exported['sha256'],
        SOURCE_KEY: {dataset: f'measured here: last validation of the run in '
                              f'{record["work_dir"]}'},
    })
    return {
        'Name': osp.splitext(osp.basename(exported['config']))[0],
        'In Collection': collection,
        'Config': osp.basename(exported['config']),
        'Metadata': meta,
        'Results': [{'Task': TASK, 'Dataset': dataset, 'Metrics': _results(record['metrics'])}],
        'Weights': (weights_url.rstrip('/') + '/' + weights) if weights_url else weights,
    }


def method_collection(config: str, name: Optional[str] = None) -> Dict:
    """The collection of a distillation config: the one its entry in the
    package's index names, or ``name``; its definition comes from that index.

    Raises:
        ValueError: The config is not listed and no ``name`` is given, or
            ``name`` is not a collection of the index.
    """
    index = osp.join(package_root(), 'model-index.yml')
    known = collections(index)
    if name is None:
        entry = find_model(index, config)
        if entry is None:
            raise ValueError(f'{config} is not listed in any metafile of {index}: name its '
                             f'method with collection= (--collection), one of {sorted(known)}')
        name = entry['In Collection']
    if name not in known:
        raise ValueError(f'collection {name!r} is not one of {sorted(known)} ({index})')
    return known[name]


def publish_student(config: str, checkpoint: str, out_dir: str,
                    collection: Optional[str] = None, weights_url: Optional[str] = None,
                    dataset: Optional[str] = None, device: str = 'cpu',
                    num_images: int = 50) -> Dict[str, str]:
    """Export the student with a hashed file name and write its zoo entry.

    Args:
        config (str): The distillation config the checkpoint was trained with.
        checkpoint (str): A training checkpoint of that config, in the run's
            work dir (its logs give the results and memory).
        out_dir (str): The export folder.
        collection (str, optional): The method's collection, needed when the
            config is not one of the package's.
        weights_url (str, optional): See :func:`zoo_entry`.
        dataset (str, optional): See :func:`zoo_entry`.
        device (str): Where to time inference.
        num_images (int): Images of the test set to measure on.

    Returns:
        dict: :func:`export_student`'s paths plus ``metafile`` and ``index``.
    """
    from mmengine.config import Config

    from ..compat import load_checkpoint_file
    from ..export import export_student
    from .cost import build_model, first_batches, inference_cost
    col = method_collection(config, collection)  # fail before writing anything
    record = run_record(checkpoint)
    meta = load_checkpoint_file(checkpoint, map_location='cpu').get('meta', {})
    # The config as trained: mmengine stores it, --cfg-options applied, in
    # every checkpoint (the demo passes the teacher's checkpoint that way).
    cfg = (Config.fromstring(meta['cfg'], '.py') if meta.get('cfg')
           else Config.fromfile(config))
    exported = export_student(config, checkpoint, out_dir, publish=True)
    student_cfg = Config.fromfile(exported['config'])
    model = build_model(student_cfg.model, exported['checkpoint'], device)
    batches = first_batches(student_cfg, num_images)
    cost = inference_cost({'student': model}, batches, num_images, device=device,
                          rounds=1)['student']
    entry = zoo_entry(cfg, config, record, exported, col['Name'], cost, device, weights_url,
                      dataset, meta.get('iter'), meta.get('epoch'))
    metafile = osp.join(out_dir, 'metafile.yml')
    upsert_model(metafile, entry, col)
    index = osp.join(out_dir, 'model-index.yml')
    dump_metafile({'Import': ['metafile.yml']}, index)
    return dict(exported, metafile=metafile, index=index, name=entry['Name'])
