from .inference import inference_mono3d, init_model
