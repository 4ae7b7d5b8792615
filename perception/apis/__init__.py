from .inference import inference_mono3d, init_model
from .video_depth import VideoDepthInferencer
