"""Export the student of a distillation run for plain MMDetection.

    python tools/export_student.py CONFIG CHECKPOINT --out DIR [--publish]
        [--collection NAME] [--weights-url URL] [--dataset NAME] [--device cpu] [--images 50]

Writes DIR/<config>_student.pth (weights + dataset meta) and
DIR/<config>_student.py (a standalone config that needs no mmkd_plugins).
With --publish the checkpoint is named <config>_student-<sha256[:8]>.pth and
the model zoo entry (results, memory, parameters, FLOPs, latency) goes into
DIR/metafile.yml, imported by DIR/model-index.yml. The same command is
``mmkd-export`` once the package is installed (mmkd_plugins/cli.py).
"""
from mmkd_plugins.cli import export

if __name__ == '__main__':
    export()
