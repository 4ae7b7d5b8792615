from .ranking_loss import DepthRankingLoss, depth_ranking_loss, sample_ranking_groups
from .ddn_loss import DDNLoss, build_ddn_target, softmax_focal_loss
from .dim_aware_loss import DimAwareL1Loss, dim_aware_l1_loss
from .gradient_loss import gradient_difference_loss
from .laplacian_depth_loss import LaplacianDepthLoss, laplacian_depth_loss
from .multibin_loss import MultiBinLoss, decode_heading, encode_heading, multibin_loss
from .photometric_loss import (EdgeAwareSmoothnessLoss, PhotometricLoss, edge_aware_smoothness, photometric_loss,
                               ssim_dissimilarity)

__all__ = [
    'DepthRankingLoss', 'depth_ranking_loss', 'sample_ranking_groups', 'DDNLoss', 'build_ddn_target',
    'softmax_focal_loss', 'DimAwareL1Loss', 'dim_aware_l1_loss', 'gradient_difference_loss', 'LaplacianDepthLoss',
    'laplacian_depth_loss', 'MultiBinLoss', 'decode_heading', 'encode_heading', 'multibin_loss',
    'EdgeAwareSmoothnessLoss', 'PhotometricLoss', 'edge_aware_smoothness', 'photometric_loss', 'ssim_dissimilarity'
]
from .depth_focal_loss import DepthFocalLoss, depth_focal_loss  # noqa: E402

__all__ += ['DepthFocalLoss', 'depth_focal_loss']
