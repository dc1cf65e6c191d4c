"""Console entry points, for a pip-installed mmkd_plugins without the
repository (``entry_points`` in ``setup.py``)::

    mmkd-train CONFIG [MMDetection tools/train.py arguments]
    mmkd-test CONFIG CHECKPOINT [MMDetection tools/test.py arguments]
    mmkd-export CONFIG CHECKPOINT --out DIR [--publish ...]

CONFIG is a file, or a config shipped with the package named
``mmkd_plugins::<folder>/<name>.py`` (see :func:`mmkd_plugins.config_path`).
``tools/train.py``, ``tools/test.py`` and ``tools/export_student.py`` in the
repository run the same functions.
"""
import argparse
from typing import List, Optional, Sequence

from .zoo.resources import SCOPE, config_path


def resolve_scoped(argv: Sequence[str]) -> List[str]:
    """``argv`` with every ``mmkd_plugins::<name>`` replaced by the path of
    that shipped config."""
    return [config_path(a) if a.startswith(SCOPE + '::') else a for a in argv]


def _run(tool: str, argv: Optional[Sequence[str]]) -> None:
    import sys

    from .experiment import run_mmdet_tool
    run_mmdet_tool(tool, resolve_scoped(sys.argv[1:] if argv is None else argv))


def train(argv: Optional[Sequence[str]] = None) -> None:
    """``mmkd-train``: MMDetection's ``tools/train.py`` with mmkd_plugins imported."""
    _run('train.py', argv)


def test(argv: Optional[Sequence[str]] = None) -> None:
    """``mmkd-test``: MMDetection's ``tools/test.py`` with mmkd_plugins imported."""
    _run('test.py', argv)


def export(argv: Optional[Sequence[str]] = None) -> None:
    """``mmkd-export``: write the student of a distillation run for plain
    MMDetection, and with ``--publish`` its model zoo entry."""
    parser = argparse.ArgumentParser(
        prog='mmkd-export',
        description='Export the student of a distillation run for plain MMDetection: '
                    '<out>/<config>_student.pth and a standalone <config>_student.py. '
                    'With --publish the weights file is named by its sha256 prefix and '
                    'the model zoo entry is written to <out>/metafile.yml '
                    '(and <out>/model-index.yml).')
    parser.add_argument('config', help='distillation config used for training '
                                       '(a file or mmkd_plugins::<folder>/<name>.py)')
    parser.add_argument('checkpoint', help='training checkpoint of that config, in its work dir')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--publish', action='store_true',
                        help='put the first 8 hex digits of the sha256 in the file name '
                             'and write the zoo entry')
    zoo = parser.add_argument_group('zoo entry (with --publish)')
    zoo.add_argument('--collection', help="the method's collection (e.g. FGD); needed when "
                                          'CONFIG is not one of the shipped configs')
    zoo.add_argument('--weights-url', help='URL folder the weights will be downloadable from '
                                           '(default: the file name, beside the metafile)')
    zoo.add_argument('--dataset', help="the results' dataset name "
                                       "(default: the last folder of data_root)")
    zoo.add_argument('--device', default='cpu', help='where to time inference (default cpu)')
    zoo.add_argument('--images', type=int, default=50,
                     help='test images to measure FLOPs and latency on (default 50)')
    args = parser.parse_args(argv)
    import mmkd_plugins  # noqa: F401  (registries, checkpoint loader)
    config = resolve_scoped([args.config])[0]
    if args.publish:
        from .zoo.publish import publish_student
        paths = publish_student(config, args.checkpoint, args.out, args.collection,
                                args.weights_url, args.dataset, args.device, args.images)
    else:
        from .export import export_student
        paths = export_student(config, args.checkpoint, args.out)
    print(f"checkpoint: {paths['checkpoint']}\nconfig:     {paths['config']}\n"
          f"sha256:     {paths['sha256']}")
    if args.publish:
        print(f"zoo entry:  {paths['name']} in {paths['metafile']}")
