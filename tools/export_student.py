"""Export the student of a distillation run for plain MMDetection.

    python tools/export_student.py CONFIG CHECKPOINT --out DIR [--publish]

Writes DIR/<config>_student.pth (weights + dataset meta) and
DIR/<config>_student.py (a standalone config that needs no mmkd_plugins).
With --publish the checkpoint is named <config>_student-<sha256[:8]>.pth.
"""
import argparse

from mmkd_plugins.export import export_student


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('config', help='distillation config used for training')
    parser.add_argument('checkpoint', help='training checkpoint of that config')
    parser.add_argument('--out', required=True, help='output folder')
    parser.add_argument('--publish', action='store_true',
                        help='put the first 8 hex digits of the sha256 in the file name')
    args = parser.parse_args(argv)
    import mmkd_plugins  # noqa: F401  (registries, checkpoint loader)
    paths = export_student(args.config, args.checkpoint, args.out, args.publish)
    print(f"checkpoint: {paths['checkpoint']}\nconfig:     {paths['config']}\n"
          f"sha256:     {paths['sha256']}")


if __name__ == '__main__':
    main()
