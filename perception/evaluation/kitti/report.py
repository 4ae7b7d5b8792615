"""Print and save the results of :func:`perception.evaluation.kitti.kitti_eval`."""
import json
from typing import Dict, Optional

from .evaluate import DIFFICULTIES, METRICS

_AP_DEFINITION = {
    'R40': 'sum(p[1..40]) / 40 * 100 over the 41 precision values (KITTI leaderboard since 8.10.2019)',
    'R11': 'sum(p[0], p[4], ..., p[40]) / 11 * 100 (the pre-2019 11-point protocol)',
}


def format_table(results: Dict) -> str:
    """The AP table in percent: one row per class and metric, R40 then R11, easy/moderate/hard."""
    overlaps = ', '.join(f'{c} {v:.2f}' for c, v in results['min_overlap'].items())
    lines = [
        f'KITTI object evaluation: {results["num_frames"]} frames, min overlap {overlaps}',
        f'{"class":<11}{"metric":<7}' + ''.join(f'{f"{r} {d}":>14}' for r in ('R40', 'R11') for d in DIFFICULTIES),
    ]
    for cls, per_metric in results['results'].items():
        for metric in METRICS:
            entry = per_metric[metric]
            if entry is None:
                cells = '  not evaluated (no usable detection of this class)'
            else:
                cells = ''.join(f'{entry[r][d]:>14.4f}' for r in ('R40', 'R11') for d in DIFFICULTIES)
            lines.append(f'{cls:<11}{metric:<7}{cells}')
    if not results['compute_aos']:
        lines.append('aos not evaluated: a detection has alpha = -10')
    return '\n'.join(lines)


def flat_results(results: Dict, prefix: Optional[str] = None) -> Dict[str, float]:
    """``{'Car_3D_R40_moderate': AP, ...}`` (percent) for the evaluated entries, keys as ``prefix/...``."""
    names = {'bbox': '2D', 'aos': 'AOS', 'bev': 'BEV', '3d': '3D'}
    flat = {}
    for cls, per_metric in results['results'].items():
        for metric, entry in per_metric.items():
            if entry is None:
                continue
            for recall, per_difficulty in entry.items():
                for difficulty, ap in per_difficulty.items():
                    key = f'{cls}_{names[metric]}_{recall}_{difficulty}'
                    flat[f'{prefix}/{key}' if prefix else key] = ap
    return flat


def dump_results(results: Dict, path: str, **extra) -> None:
    """Write ``results`` as JSON with the fields of the oracle's ``expected.json`` (plus ``extra``)."""
    payload = dict(extra)
    payload.update({
        'num_frames': results['num_frames'],
        'units': 'AP in percent (0..100)',
        'ap_definition': _AP_DEFINITION,
        'min_overlap': results['min_overlap'],
        'difficulty': results['difficulty'],
        'compute_aos': results['compute_aos'],
        'evaluated': results['evaluated'],
        'results': results['results'],
        'precision': results['precision'],
    })
    with open(path, 'w') as f:
        json.dump(payload, f, indent=1)
