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
