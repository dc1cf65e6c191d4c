"""Write a model card into docs/model_zoo.md for every exported student.

    python tools/model_card.py [EXPORT_DIR ...] [--out docs/model_zoo.md]
        [--device cpu] [--images 50] [--rounds 3] [--train-command "make demo"]

An EXPORT_DIR is the --out folder of ``tools/export_student.py --publish``
(its model-index.yml lists the students); by default every such folder under
work_dirs/. For each student the card compares it with its teacher:
parameters, FLOPs, latency and FPS measured side by side on this machine
(--device), and both mAPs from the zoo entry (mmkd_plugins/zoo/card.py).
Run it from the folder the runs were trained in: data and teacher paths in
the configs are relative to it.
"""
import argparse
import glob
import os.path as osp
import shlex
import sys

from mmkd_plugins.zoo.card import export_entries, measure, render, write_card


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('exports', nargs='*', help='export folders (default: work_dirs/**/)')
    parser.add_argument('--out', default='docs/model_zoo.md')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--images', type=int, default=50, help='timed test images per round')
    parser.add_argument('--rounds', type=int, default=3)
    parser.add_argument('--train-command', help='the command that trained and exported the '
                                                'students, shown in the card (e.g. "make demo")')
    args = parser.parse_args(argv)
    import torch

    import mmkd_plugins  # noqa: F401  (registries, checkpoint loader)
    indices = ([osp.join(d, 'model-index.yml') for d in args.exports] if args.exports else
               sorted(glob.glob('work_dirs/**/model-index.yml', recursive=True)))
    if not indices:
        raise SystemExit('no export folder with a model-index.yml: run '
                         'tools/export_student.py ... --publish first')
    if args.device.startswith('cuda'):
        gpu_note = None
    elif torch.cuda.is_available():
        gpu_note = 'GPU: not measured for this card (`--device cpu`).'
    else:
        gpu_note = 'GPU: not measured, none was available on the machine that made this card.'
    command = 'python tools/model_card.py ' + ' '.join(shlex.quote(a) for a in sys.argv[1:])
    for index in indices:
        for entry, root in export_entries(index):
            costs = measure(entry, root, args.device, args.images, args.rounds)
            commands = '\n'.join(c for c in (args.train_command, command) if c)
            write_card(args.out, entry['Name'], render(entry, costs, args.device, commands,
                                                       gpu_note))
            print(f'{entry["Name"]}: card written to {args.out}')


if __name__ == '__main__':
    main()
