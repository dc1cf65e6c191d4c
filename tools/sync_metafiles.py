"""Write the measured accuracy table into the metafiles' results.

    python tools/sync_metafiles.py [--accuracy docs/accuracy.json] [--index model-index.yml]
        [--source-name TEXT]

Every row of the accuracy file whose config has no --cfg-options becomes the
result of the metafile entry naming that config, for the dataset named after
the row's suite: box AP = mean mAP over the row's seeds (in percent), and
worst-group box AP where the suite has groups. Results of other datasets
(the papers' COCO numbers) are kept. Run it again whenever rows are added;
the metafiles are then validated (mmkd_plugins/zoo/results.py, metafile.py).
"""
import argparse

from mmkd_plugins.zoo.metafile import validate_index
from mmkd_plugins.zoo.results import load_accuracy, sync_results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--accuracy', default='docs/accuracy.json')
    parser.add_argument('--index', default='model-index.yml')
    parser.add_argument('--source-name', help='how the metafiles name the source of the '
                                              'numbers (default: the --accuracy path)')
    args = parser.parse_args(argv)
    rows = load_accuracy(args.accuracy)
    report = sync_results(args.index, rows, args.source_name or args.accuracy)
    for name, suite in report['updated']:
        print(f'updated  {name} ({suite})')
    for suite, row in report['variants']:
        print(f'skipped  {suite}/{row}: measures the config with --cfg-options, not the config')
    for suite, row in report['unlisted']:
        print(f'skipped  {suite}/{row}: no metafile entry names its config')
    errors = validate_index(args.index, parse_configs=False)
    if errors:
        raise SystemExit('the metafiles are not valid after the update:\n' + '\n'.join(errors))


if __name__ == '__main__':
    main()
