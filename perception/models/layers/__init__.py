from .adamixer import AdaMixerStage, AdaptiveMixing, SubqueryPointSampler, sample_3d, scale_level_weights
from .depth_bins import depth_to_lid_index, lid_bin_centers, lid_bin_size
from .depth_predictor import DepthPredictor, interpolate_embedding
from .depthaware_transformer import (DepthAwareDecoder, DepthAwareDecoderLayer, DepthAwareTransformer,
                                     VisualEncoder, VisualEncoderLayer, refine_reference_boxes)
from .monodgp_transformer import Det2DDecoder, Det2DDecoderLayer, MonoDGPTransformer

__all__ = [
    'AdaMixerStage', 'AdaptiveMixing', 'SubqueryPointSampler', 'sample_3d', 'scale_level_weights',
    'depth_to_lid_index', 'lid_bin_centers', 'lid_bin_size', 'DepthPredictor', 'interpolate_embedding',
    'DepthAwareDecoder', 'DepthAwareDecoderLayer', 'DepthAwareTransformer', 'VisualEncoder', 'VisualEncoderLayer',
    'refine_reference_boxes', 'Det2DDecoder', 'Det2DDecoderLayer', 'MonoDGPTransformer'
]
from .camera_aware_depth_net import ASPP, CameraAwareDepthNet  # noqa: E402
from .object_depth_encoder import DeformableFeatureAggregation3D, ObjectDepthEncoder, pixel_centres  # noqa: E402
from .petr_temporal_decoder import PETRTemporalDecoder, PETRTemporalDecoderLayer, SDPAttention  # noqa: E402
from .position_embedding_3d import (MLN, lift_points, nerf_positional_encoding, normalize_points,  # noqa: E402
                                    pos2posemb1d, pos2posemb3d, sine_embedding)

__all__ += [
    'ASPP', 'CameraAwareDepthNet', 'DeformableFeatureAggregation3D', 'ObjectDepthEncoder', 'pixel_centres',
    'PETRTemporalDecoder', 'PETRTemporalDecoderLayer', 'SDPAttention', 'MLN', 'lift_points',
    'nerf_positional_encoding', 'normalize_points', 'pos2posemb1d', 'pos2posemb3d', 'sine_embedding'
]
from .fused_attention import FusedMultiheadAttention  # noqa: E402

__all__ += ['FusedMultiheadAttention']
from .dfa3d_spatial_cross_attention import (DFA3DDepthHead, PillarDeformableAttention,  # noqa: E402
                                            SpatialCrossAttention, depth_bin_index, one_hot_depth, pillar_points,
                                            project_pillars)

__all__ += ['DFA3DDepthHead', 'PillarDeformableAttention', 'SpatialCrossAttention', 'depth_bin_index',
            'one_hot_depth', 'pillar_points', 'project_pillars']
