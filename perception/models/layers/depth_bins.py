"""Linear-increasing depth discretisation (LID), the depth bins of CaDDN, MonoDETR and MonoDGP.

Bin widths grow linearly with depth: with ``N`` bins over ``[d_min, d_max]`` the width of bin ``i`` is
``(i + 1) * w`` with ``w = 2 (d_max - d_min) / (N (N + 1))``, so that the ``N`` bins exactly cover the
range (Reading et al., "Categorical Depth Distribution Network", CVPR 2021). A depth ``d`` falls
in bin ``floor(-0.5 + 0.5 sqrt(1 + 8 (d - d_min) / w))``. Models add one extra class, index ``N``, for
"no object / out of range".
"""
import torch
from torch import Tensor


def lid_bin_size(num_bins: int, depth_min: float, depth_max: float) -> float:
    """Width ``w`` of the first LID bin (bin ``i`` is ``(i + 1) w`` wide), metres."""
    return 2 * (depth_max - depth_min) / (num_bins * (1 + num_bins))


def lid_bin_centers(num_bins: int = 80, depth_min: float = 1e-3, depth_max: float = 60.,
                    with_max: bool = True) -> Tensor:
    """Representative depth of each LID bin, as MonoDETR's depth predictor uses them.

    The value of bin ``i`` is ``(i + 0.5)^2 w / 2 - w / 8 + d_min = d_min + i (i + 1) w / 2``, which is
    where bin ``i`` starts (the official "bin value"; the weighted depth is the expectation over them).

    Args:
        num_bins: number of bins ``N``.
        depth_min: start of the first bin, metres.
        depth_max: end of the last bin, metres.
        with_max: append ``depth_max`` as the value of the extra class ``N``.

    Returns:
        (N + 1,) float32 depths in metres with ``with_max``, else (N,).
    """
    size = lid_bin_size(num_bins, depth_min, depth_max)
    index = torch.arange(num_bins, dtype=torch.float64)
    centers = (index + 0.5).pow(2) * size / 2 - size / 8 + depth_min
    if with_max:
        centers = torch.cat([centers, centers.new_tensor([depth_max])])
    return centers.float()


def depth_to_lid_index(depth: Tensor, num_bins: int = 80, depth_min: float = 1e-3,
                       depth_max: float = 60.) -> Tensor:
    """Bin index of each depth, for a classification target.

    Depths below ``depth_min``, beyond ``depth_max`` or not finite (and hence the 0 of empty pixels)
    get the extra class ``num_bins``.

    Args:
        depth: (...) depths, metres.

    Returns:
        (...) int64 indices in ``[0, num_bins]``.
    """
    size = lid_bin_size(num_bins, depth_min, depth_max)
    continuous = -0.5 + 0.5 * torch.sqrt((1 + 8 * (depth - depth_min) / size).clamp(min=0))
    invalid = (depth < depth_min) | (continuous > num_bins) | ~torch.isfinite(continuous)
    index = continuous.clamp(0, num_bins).long()
    return index.masked_fill(invalid, num_bins)
