"""Evaluate a folder of KITTI result files with the official devkit's protocol (exact, on the CPU).

    python tools/analysis/kitti_eval.py --gt-dir data/kitti/training/label_2 \
        --result-dir work_dirs/x/results --split-file data/kitti/ImageSets/val.txt --out ap.json

Every ground-truth frame (all ``*.txt`` of ``--gt-dir``, or the ids of ``--split-file``) is evaluated;
a frame without a result file counts as a frame without detections (one warning says how many). A split
file that lists a frame twice is refused; rows of classes KITTI does not define (``Vehicle``) and result
files without ground truth are not evaluated, with a warning. The table is printed and the JSON has the
schema of the KITTI oracle's ``expected.json``.
"""
import argparse
import time

from perception.evaluation.kitti import (CLASSES, MIN_OVERLAPS, dump_results, format_table, kitti_eval,
                                         load_kitti_folders, read_split_file)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--gt-dir', required=True, help='KITTI label_2 folder (15-column rows)')
    parser.add_argument('--result-dir', required=True, help='folder of 16-column result files')
    parser.add_argument('--split-file', help='frame ids to evaluate, one per line (ImageSets/val.txt)')
    parser.add_argument('--iou-set', choices=sorted(MIN_OVERLAPS), default='strict',
                        help='strict: 0.7/0.5/0.5 (official); loose: 0.5/0.25/0.25 (Car/Ped/Cyc)')
    parser.add_argument('--classes', nargs='+', choices=CLASSES, default=list(CLASSES))
    parser.add_argument('--out', help='JSON file to write the results to')
    return parser.parse_args(argv)


def main(argv=None) -> dict:
    args = parse_args(argv)
    frame_ids = read_split_file(args.split_file) if args.split_file else None
    frame_ids, gt_annos, dt_annos = load_kitti_folders(args.gt_dir, args.result_dir, frame_ids)
    start = time.perf_counter()
    results = kitti_eval(gt_annos, dt_annos, classes=args.classes, iou_set=args.iou_set)
    seconds = time.perf_counter() - start
    print(format_table(results))
    print(f'evaluated in {seconds:.2f} s')
    if args.out:
        dump_results(results, args.out, gt_dir=args.gt_dir, result_dir=args.result_dir,
                     iou_set=args.iou_set)
        print(f'results written to {args.out}')
    return results


if __name__ == '__main__':
    main()
