"""Video depth inference: a video, a folder of frames, a KITTI raw drive or any iterable of frames through a
depth model, streamed one frame at a time in memory bounded by the model's temporal window.

    from perception.apis import VideoDepthInferencer
    inferencer = VideoDepthInferencer('configs/tiodepth/<config>.py', 'epoch_12.pth')
    for result in inferencer('clip.mp4', out_dir='out', save=('npy', 'video')):
        print(result.index, result.depth.shape, result.metric)

The inferencer has the shape of mmdet's ``DetInferencer`` (preprocess: frames to model inputs, forward, visualize,
postprocess: the writers; keyword arguments dispatched to the step that takes them), except that calling it
returns a generator: a result leaves as soon as its frame is finished, and nothing holds the whole video.

**Two kinds of models, one interface.** A model declares how it consumes a video with a plain tuple
``video_window = (window, stride, context)`` (read as a :class:`VideoWindow`: ``window`` frames per call,
``stride`` new frames per call after the first, the ``context`` last finished frames given back with each later
call; a tuple, so that models need not import this module). The inferencer holds only the frames of the current
window and the context. A windowed temporal model (ChronoDepth: window 10, stride 5, context 5) implements
:class:`WindowedDepthModel`. A per-frame depth model of this toolbox (TiO-Depth: ``predict`` fills
``pred_depth``) declares nothing and runs through :class:`PerFrameDepthAdapter`, window 1, in batches of
``batch_size`` frames, through its config's test pipeline.
"""
import os
import os.path as osp
import re
import sys
import warnings
from collections import deque
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, NamedTuple, Optional, Protocol, Sequence, Tuple, Union

import cv2
import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose, pseudo_collate
from mmengine.registry import init_default_scope
from mmengine.runner.checkpoint import _load_checkpoint
from mmengine.utils import ProgressBar
from torch import nn

from perception.datasets.kitti_raw import load_kitti_raw_calib
from perception.engine import load_weights, register_checkpoint_loader
from perception.evaluation.depth.functional import fit_scale_shift, resize_depth
from perception.fileio import InvalidInputError, atomic_write
from perception.fileio.depth import MAX_PNG_DEPTH, write_depth_png
from perception.structures import cam2img_to_4x4
from perception.visualization import colorize_depth
from .inference import init_model

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.tif', '.tiff', '.webp')
SAVE_KINDS = ('npy', 'png16', 'video')
ALIGN_MODES = ('none', 'first', 'running')
# Pipeline steps that read images from disk: the inferencer hands the decoded frames over instead.
_LOADER_TYPES = ('LoadImageFromFile', 'LoadImageFromFileMono3D', 'LoadImageMono3D')


class VideoWindow(NamedTuple):
    """How a model consumes a video: the first call gets ``window`` new frames; each later call gets the
    ``context`` last finished frames followed by at most ``stride`` new ones (fewer at the end of the video,
    and a first window shorter than ``window`` when the video is). ``context + stride <= window``."""
    window: int = 1
    stride: int = 1
    context: int = 0

    def check(self) -> 'VideoWindow':
        if self.window < 1 or self.stride < 1 or self.context < 0 or self.context + self.stride > self.window:
            raise ValueError(f'{self}: need window >= 1, stride >= 1, context >= 0 and context + stride <= window')
        return self


PER_FRAME = VideoWindow(1, 1, 0)


class WindowedDepthModel(Protocol):
    """What a windowed temporal depth model provides.

    Attributes:
        video_window: ``(window, stride, context)``, see :class:`VideoWindow`.
        video_metric: True when its depth is in metres; absent or False for relative (affine-invariant) depth.

    It may also define ``video_input_size(height, width) -> (h, w)``, the size it needs for frames of
    (height, width) (default: their own); its outputs are resized back to the frames' size.
    """
    video_window: Tuple[int, int, int]

    def predict_window(self, images: torch.Tensor, num_context: int, context_depths: Optional[torch.Tensor],
                       state: Any) -> Tuple[torch.Tensor, Any]:
        """Depth of the new frames of one window.

        Args:
            images: (T, 3, h, w) RGB in [0, 1]: the ``num_context`` context frames, then the new frames.
            num_context: how many of ``images`` are finished context frames.
            context_depths: (num_context, h, w) their finished depths (this model's outputs), None when 0.
            state: what the previous call returned (its own cache, e.g. latents), None at the first call.

        Returns:
            (T - num_context, h, w) depths of the new frames, and the state for the next call.
        """


@dataclass
class Frame:
    """One input frame: its index in the stream, a name for the output files, the (H, W, 3) uint8 BGR image
    (as OpenCV reads it) and, for stereo models, the partner view of the same size."""
    index: int
    name: str
    image: np.ndarray
    partner: Optional[np.ndarray] = None


@dataclass
class DepthResult:
    """One finished frame: ``depth`` (H, W) float32 at the input size, in metres when ``metric`` else relative
    (up to an unknown scale, or scale and shift), and the input ``image``."""
    index: int
    name: str
    depth: np.ndarray
    metric: bool
    image: np.ndarray


@dataclass
class FrameSource:
    """A stream of frames and what is known about it: a ``name`` for the video file, the ``num_frames`` and
    ``fps`` when the container says, and the calibration (``cam2img`` (4, 4), ``baseline`` metres) of a drive."""
    name: str
    frames: Iterator[Frame]
    num_frames: Optional[int] = None
    fps: Optional[float] = None
    cam2img: Optional[np.ndarray] = None
    baseline: Optional[float] = None


def natural_key(name: str) -> List[Union[int, str]]:
    """Sort key that orders ``frame2`` before ``frame10``."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r'(\d+)', name)]


def _checked(frames: Iterable[Frame], where: str) -> Iterator[Frame]:
    """The frames, each checked to be (H, W, 3) uint8 of the first frame's size (and its partner too)."""
    size = None
    for frame in frames:
        for what, image in (('frame', frame.image), ('partner', frame.partner)):
            if image is None and what == 'partner':
                continue
            if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 \
                    or image.dtype != np.uint8:
                got = f'{image.dtype} {image.shape}' if isinstance(image, np.ndarray) else type(image).__name__
                raise InvalidInputError(f'{where}: {what} {frame.index} ({frame.name}) is not an (H, W, 3) uint8 '
                                        f'image: {got}')
            if size is None:
                size = image.shape
            elif image.shape != size:
                raise InvalidInputError(f'{where}: {what} {frame.index} ({frame.name}) has size {image.shape[:2]}, '
                                        f'the first frame {size[:2]}: frames of one video must share their size')
        yield frame
    if size is None:
        raise InvalidInputError(f'{where}: no frame')


def _video_frames(path: str, declared: int) -> Iterator[Frame]:
    capture = cv2.VideoCapture(path)
    try:
        index = 0
        while True:
            ok, image = capture.read()
            if not ok:
                break
            yield Frame(index, f'{index:06d}', image)
            index += 1
    finally:
        capture.release()
    if index == 0:
        raise InvalidInputError(f'{path}: no frame could be decoded (an empty or unreadable video)')
    if index < declared:
        raise InvalidInputError(f'{path}: decoding stopped at frame {index} of the {declared} the container '
                                'declares (a truncated or corrupt video)')


def _image(path: str, index: int) -> np.ndarray:
    image = cv2.imread(path, cv2.IMREAD_COLOR)
    if image is None:
        raise InvalidInputError(f'{path}: frame {index} cannot be read as an image')
    return image


def _folder_frames(paths: Sequence[str], partners: Optional[Sequence[str]]) -> Iterator[Frame]:
    for index, path in enumerate(paths):
        partner = None
        if partners is not None:
            if not osp.isfile(partners[index]):
                raise FileNotFoundError(f'{partners[index]}: the stereo partner of frame {index} ({path}) is missing')
            partner = _image(partners[index], index)
        yield Frame(index, Path(path).stem, _image(path, index), partner)


def _image_files(folder: str) -> List[str]:
    names = sorted((n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS)), key=natural_key)
    if not names:
        raise FileNotFoundError(f'{folder}: no image ({", ".join(IMAGE_EXTENSIONS)}) in the folder')
    return [osp.join(folder, n) for n in names]


def open_frames(src: Union[str, os.PathLike, Iterable[np.ndarray]], with_partner: bool = False) -> FrameSource:
    """A :class:`FrameSource` of ``src``, read lazily (a video is decoded frame by frame, never whole).

    Args:
        src: a video file (anything OpenCV decodes), a folder of images (sorted naturally), a KITTI raw drive
            folder (``image_02/data``; ``image_03/data`` the partners; the calibration of the date folder above
            it when present) or an iterable of (H, W, 3) uint8 BGR arrays.
        with_partner: the stereo partner of each frame is needed (a KITTI raw drive only).
    """
    if not isinstance(src, (str, os.PathLike)):
        if with_partner:
            raise InvalidInputError('a stereo model needs a KITTI raw drive folder (image_02 + image_03), got frames')
        frames = (Frame(i, f'{i:06d}', image) for i, image in enumerate(src))
        return FrameSource('frames', _checked(frames, 'input frames'))
    path = os.fspath(src)
    if osp.isdir(path):
        left = osp.join(path, 'image_02', 'data')
        if osp.isdir(left):
            files = _image_files(left)
            partners = [osp.join(path, 'image_03', 'data', osp.basename(f)) for f in files] if with_partner else None
            source = FrameSource(osp.basename(osp.normpath(path)), _checked(_folder_frames(files, partners), path),
                                 len(files), fps=10.)
            date_dir = osp.dirname(osp.abspath(path))
            if osp.isfile(osp.join(date_dir, 'calib_cam_to_cam.txt')):
                calib = load_kitti_raw_calib(date_dir)
                source.cam2img, source.baseline = cam2img_to_4x4(calib.intrinsics(2)), calib.baseline
            return source
        if with_partner:
            raise InvalidInputError(f'{path}: a stereo model needs a KITTI raw drive folder (image_02/data + '
                                    'image_03/data)')
        files = _image_files(path)
        return FrameSource(osp.basename(osp.normpath(path)), _checked(_folder_frames(files, None), path), len(files))
    if not osp.isfile(path):
        raise FileNotFoundError(f'{path}: no such video file or folder')
    if with_partner:
        raise InvalidInputError(f'{path}: a stereo model needs a KITTI raw drive folder (image_02/data + '
                                'image_03/data)')
    capture = cv2.VideoCapture(path)
    opened = capture.isOpened()
    declared, fps = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)), capture.get(cv2.CAP_PROP_FPS)
    capture.release()
    if not opened:
        raise InvalidInputError(f'{path}: OpenCV cannot open it as a video (empty, truncated or not a video)')
    return FrameSource(Path(path).stem, _checked(_video_frames(path, declared), path), declared or None,
                       fps if fps > 0 else None)


class PerFrameDepthAdapter:
    """A per-frame depth model of this toolbox as a window-1 video model: its config's test pipeline (without
    the steps that load files), then ``test_step``, which fills each data sample's ``pred_depth``.

    Models whose pipeline packs a stereo pair (TiO-Depth's) get the partner view when their first output
    mode (``test_out_modes[0]``) is ``'stereo'``, otherwise the frame itself stands in for the partner their
    monocular output does not read. The depth is in metres when the source has a calibration (``cam2img`` and
    ``baseline`` reach the model as in training), else relative.
    """
    video_window = PER_FRAME

    def __init__(self, model: nn.Module) -> None:
        cfg = getattr(model, 'cfg', None)
        if cfg is None:
            raise ValueError(f'{type(model).__name__} declares no video_window and has no cfg (its test pipeline): '
                             'build it with perception.apis.init_model or give the config')
        self.model = model
        self.config_name = cfg.filename or 'the config'
        steps = [step for step in cfg.test_dataloader.dataset.pipeline if not self._loads(step)]
        # TiO-Depth's pipelines carry the partner view under 'stereo_img' through every step.
        self.pairs = 'stereo_img' in repr(cfg.test_dataloader.dataset.pipeline)
        self.pipeline = Compose(steps)
        self.needs_partner = tuple(getattr(model, 'test_out_modes', ('mono', )))[:1] == ('stereo', )

    @staticmethod
    def _loads(step: dict) -> bool:
        if step['type'].split('.')[-1] in _LOADER_TYPES:
            return True
        inner = step.get('transforms')
        return step['type'].split('.')[-1] == 'KeyMapper' and bool(inner) and all(
            PerFrameDepthAdapter._loads(t) for t in inner)

    def __call__(self, frames: Sequence[Frame], cam2img: Optional[np.ndarray],
                 baseline: Optional[float]) -> List[np.ndarray]:
        """(h, w) depth maps of the frames at the network's resolution."""
        batch = []
        for frame in frames:
            size = frame.image.shape[:2]
            data = dict(img=frame.image, img_path=frame.name, img_shape=size, ori_shape=size, side='l',
                        frame=frame.index)
            if self.pairs:
                data['stereo_img'] = frame.partner if frame.partner is not None else frame.image
            if cam2img is not None:
                data.update(cam2img=cam2img.copy(), baseline=baseline)
            batch.append(self.pipeline(data))
        with torch.no_grad():
            samples = self.model.test_step(pseudo_collate(batch))
        depths = []
        for frame, sample in zip(frames, samples):
            if 'pred_depth' not in sample:
                raise InvalidInputError(f'{self.config_name}: the model ({type(self.model).__name__}) gave no '
                                        f'pred_depth for frame {frame.index}: not a depth model')
            depths.append(sample.pred_depth.data.detach().float().cpu().numpy().reshape(
                sample.pred_depth.data.shape[-2:]))
        return depths


class _TemporalAligner:
    """Scale and shift of each relative depth map fitted by least squares to a reference on the pixels valid
    in both: the first frame's map (``'first'``) or the previous frame's aligned map (``'running'``)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.reference: Optional[np.ndarray] = None

    def __call__(self, depth: np.ndarray) -> np.ndarray:
        if self.mode == 'none':
            return depth
        if self.reference is None:
            aligned = depth
        else:
            both = np.isfinite(depth) & np.isfinite(self.reference) & (depth > 0) & (self.reference > 0)
            scale, shift = fit_scale_shift(self.reference[both], depth[both])
            aligned = (scale * depth + shift).astype(np.float32)
        if self.mode == 'running' or self.reference is None:
            self.reference = aligned
        return aligned


class _VideoWriter:
    """An mp4 of the input beside its colourised depth, with one colour range for the whole video: the 2nd
    and 98th percentiles of the first ``range_frames`` depth maps (held until then), or ``depth_range``.
    Written under a hidden temporary name and renamed when complete."""

    def __init__(self, path: str, fps: float, depth_range: Optional[Tuple[float, float]] = None,
                 range_frames: int = 10) -> None:
        self.path, self.fps, self.depth_range, self.range_frames = path, fps, depth_range, range_frames
        self.pending: List[Tuple[np.ndarray, np.ndarray]] = []
        self.writer: Optional[cv2.VideoWriter] = None
        folder = osp.dirname(osp.abspath(path))
        os.makedirs(folder, exist_ok=True)
        # OpenCV creates the file (with the usual mode) and picks the container from the extension.
        self.tmp = osp.join(folder, f'.{osp.basename(path)}.{os.getpid()}.tmp.mp4')

    def add(self, image: np.ndarray, depth: np.ndarray) -> None:
        if self.depth_range is None:
            self.pending.append((image, depth))
            if len(self.pending) == self.range_frames:
                self._fix_range()
            return
        self._write(image, depth)

    def _fix_range(self) -> None:
        values = np.concatenate([d[::4, ::4][np.isfinite(d[::4, ::4]) & (d[::4, ::4] > 0)] for _, d in self.pending])
        self.depth_range = (float(np.percentile(values, 2)), float(np.percentile(values, 98))) if values.size \
            else (1., 100.)
        pending, self.pending = self.pending, []
        for image, depth in pending:
            self._write(image, depth)

    def _write(self, image: np.ndarray, depth: np.ndarray) -> None:
        canvas = np.concatenate([image, colorize_depth(depth, *self.depth_range)], axis=1)
        if self.writer is None:
            self.writer = cv2.VideoWriter(self.tmp, cv2.VideoWriter_fourcc(*'mp4v'), self.fps,
                                          (canvas.shape[1], canvas.shape[0]))
            if not self.writer.isOpened():
                raise OSError(f'{self.path}: OpenCV cannot write an mp4 (mp4v) video here')
        self.writer.write(canvas)

    def close(self) -> None:
        if self.pending:
            self._fix_range()
        if self.writer is not None:
            self.writer.release()
        os.replace(self.tmp, self.path)

    def discard(self) -> None:
        if self.writer is not None:
            self.writer.release()
        if osp.exists(self.tmp):
            os.remove(self.tmp)


def _save_npy(path: str, depth: np.ndarray) -> None:

    def write(tmp: str) -> None:
        with open(tmp, 'wb') as f:
            np.save(f, depth)

    atomic_write(path, write)


def _save_png16(path: str, depth: np.ndarray) -> None:

    def write(tmp: str) -> None:
        # OpenCV picks the encoder from the extension: write beside it, then take its place.
        write_depth_png(tmp + '.png', depth)
        os.replace(tmp + '.png', tmp)

    atomic_write(path, write)


class VideoDepthInferencer:
    """Depth of every frame of a video, streamed (see the module docstring).

    Args:
        model: a config file, a :class:`Config` or a built model (a per-frame depth model of this toolbox
            with its ``cfg``, or a :class:`WindowedDepthModel`).
        checkpoint: local checkpoint to load; it must fit the model exactly (else an error names it and lists
            the keys; ``cfg_options={'load_strict': False}`` loads what fits, on purpose, as ``init_model``).
        device: ``'cpu'``, ``'cuda'``, ``'cuda:1'`` ...
        cfg_options: overrides merged into the config.
        show_progress: a progress bar with frames/s on stderr.
    """
    preprocess_kwargs = {'batch_size'}
    forward_kwargs = {'align'}
    visualize_kwargs = {'depth_range'}
    postprocess_kwargs = {'out_dir', 'save', 'fps'}

    def __init__(self, model: Union[str, Path, Config, nn.Module], checkpoint: Optional[str] = None,
                 device: str = 'cpu', cfg_options: Optional[dict] = None, show_progress: bool = True) -> None:
        if isinstance(model, nn.Module):
            if cfg_options:
                raise ValueError('cfg_options apply to a config, not to a built model')
            if checkpoint is not None:
                register_checkpoint_loader()
                load_weights(model, _load_checkpoint(checkpoint, map_location='cpu'), checkpoint, strict=True)
            model = model.to(device).eval()
            if getattr(model, 'cfg', None) is not None:
                init_default_scope(model.cfg.get('default_scope', 'perception'))
        else:
            model = init_model(model, checkpoint, device, cfg_options)
        self.model = model
        self.device = device
        self.show_progress = show_progress
        window = getattr(model, 'video_window', None)
        self.adapter = PerFrameDepthAdapter(model) if window is None else None
        self.window = (window or PER_FRAME)
        self.window = VideoWindow(*self.window).check()

    def _dispatch_kwargs(self, **kwargs) -> Tuple[Dict, Dict, Dict, Dict]:
        known = self.preprocess_kwargs | self.forward_kwargs | self.visualize_kwargs | self.postprocess_kwargs
        unknown = set(kwargs) - known
        if unknown:
            raise TypeError(f'unknown arguments {sorted(unknown)}, expected some of {sorted(known)}')
        return tuple({k: v for k, v in kwargs.items() if k in group} for group in (
            self.preprocess_kwargs, self.forward_kwargs, self.visualize_kwargs, self.postprocess_kwargs))

    def __call__(self, inputs: Union[str, os.PathLike, Iterable[np.ndarray]], **kwargs) -> Iterator[DepthResult]:
        """Start the stream: returns a generator of :class:`DepthResult`, one per frame, in order.

        Args:
            inputs: see :func:`open_frames`.
            batch_size: frames per forward pass of a per-frame model (windowed models: 1).
            align: ``'none'``, or for relative depth ``'first'`` / ``'running'``: each depth map is mapped by
                the scale and shift fitted (least squares, pixels valid in both) to the first frame's map or
                to the previous frame's aligned map, which removes the per-frame scale flicker of
                affine-invariant models at the cost of assuming that consecutive frames overlap pixel by pixel.
            depth_range: (near, far) of the video's colour map; default from its first 10 frames.
            out_dir: where to write; nothing is written without it.
            save: what to write into ``out_dir`` (default ``('npy', 'video')``): ``'npy'`` float32 depth per frame
                (``depth_npy/<name>.npy``), ``'png16'`` KITTI depth PNGs (``depth_png16/<name>.png``, depth x 256,
                saturating at 255.996), ``'video'`` ``<source name>_depth.mp4``, input and depth side by side.
            fps: frame rate of the mp4 (default: the source's, else 10).

        Every file appears complete or not at all; when the stream stops early (an error, an interrupt, the
        consumer leaving), the frames finished so far keep their npy/png files and no mp4 is left.
        """
        preprocess, forward, visualize, postprocess = self._dispatch_kwargs(**kwargs)
        batch_size = preprocess.get('batch_size', 1)
        align = forward.get('align', 'none')
        out_dir, save = postprocess.get('out_dir'), postprocess.get('save')
        if batch_size < 1 or (batch_size > 1 and self.adapter is None):
            raise ValueError(f'batch_size {batch_size}: must be >= 1, and 1 for a windowed model')
        if align not in ALIGN_MODES:
            raise ValueError(f'align must be one of {ALIGN_MODES}, got {align!r}')
        if save is None:
            save = ('npy', 'video') if out_dir is not None else ()
        save = tuple(save)
        bad = [s for s in save if s not in SAVE_KINDS]
        if bad:
            raise ValueError(f'unknown save kinds {bad}, expected some of {SAVE_KINDS}')
        if save and out_dir is None:
            raise ValueError(f'save={save} needs an out_dir')
        source = open_frames(inputs, with_partner=self.adapter is not None and self.adapter.needs_partner)
        metric = (source.cam2img is not None) if self.adapter is not None else bool(
            getattr(self.model, 'video_metric', False))
        if metric and align != 'none':
            raise ValueError(f'align={align!r} is for relative depth; this model gives metres for {source.name}')
        return self._stream(source, batch_size, align, metric, out_dir, save, visualize.get('depth_range'),
                            postprocess.get('fps'))

    def preprocess(self, frames: Iterator[Frame], batch_size: int) -> Iterator[Tuple[List[Frame], int]]:
        """Chunks of (frames, number of context frames among them) as the model's window asks for them."""
        if self.adapter is not None:
            while True:
                chunk = list(islice(frames, batch_size))
                if not chunk:
                    return
                yield chunk, 0
        window, stride, context = self.window
        held: deque = deque(maxlen=context)
        chunk = list(islice(frames, window))
        while chunk:
            yield list(held) + chunk, len(held)
            held.extend(chunk)
            chunk = list(islice(frames, stride))

    def forward(self, chunks: Iterator[Tuple[List[Frame], int]],
                source: FrameSource) -> Iterator[Tuple[Frame, np.ndarray]]:
        """(frame, depth at the model's resolution) of each new frame, in order."""
        if self.adapter is not None:
            for frames, _ in chunks:
                yield from zip(frames, self.adapter(frames, source.cam2img, source.baseline))
            return
        finished: deque = deque(maxlen=self.window.context)
        state = None
        for frames, num_context in chunks:
            height, width = frames[0].image.shape[:2]
            size = self.model.video_input_size(height, width) if hasattr(self.model, 'video_input_size') \
                else (height, width)
            images = torch.stack([self._to_tensor(f.image, size) for f in frames]).to(self.device)
            context_depths = torch.stack(list(finished))[-num_context:] if num_context else None
            with torch.no_grad():
                depths, state = self.model.predict_window(images, num_context, context_depths, state)
            new = frames[num_context:]
            if tuple(depths.shape) != (len(new), *size):
                raise ValueError(f'{type(self.model).__name__}.predict_window gave depths of shape '
                                 f'{tuple(depths.shape)} for {len(new)} new frames of {size}')
            for frame, depth in zip(new, depths):
                finished.append(depth)
                yield frame, depth.detach().float().cpu().numpy()

    @staticmethod
    def _to_tensor(image: np.ndarray, size: Tuple[int, int]) -> torch.Tensor:
        if image.shape[:2] != tuple(size):
            image = cv2.resize(image, (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
        return torch.from_numpy(np.ascontiguousarray(image[..., ::-1])).permute(2, 0, 1).float() / 255.

    def _stream(self, source: FrameSource, batch_size: int, align: str, metric: bool, out_dir: Optional[str],
                save: Tuple[str, ...], depth_range: Optional[Tuple[float, float]],
                fps: Optional[float]) -> Iterator[DepthResult]:
        video = None
        if 'video' in save:
            video = _VideoWriter(osp.join(out_dir, f'{source.name}_depth.mp4'), fps or source.fps or 10.,
                                 depth_range)
        aligner = _TemporalAligner(align)
        progress = ProgressBar(source.num_frames or 0, file=sys.stderr) if self.show_progress else None
        saturated = False
        try:
            for frame, depth in self.forward(self.preprocess(source.frames, batch_size), source):
                depth = resize_depth(depth, frame.image.shape[:2]).astype(np.float32)
                result = DepthResult(frame.index, frame.name, aligner(depth), metric, frame.image)
                if 'npy' in save:
                    _save_npy(osp.join(out_dir, 'depth_npy', f'{frame.name}.npy'), result.depth)
                if 'png16' in save:
                    if not saturated and np.nanmax(result.depth) > MAX_PNG_DEPTH:
                        saturated = True
                        warnings.warn(f'frame {frame.index}: depth beyond the {MAX_PNG_DEPTH:.3f} a 16-bit PNG '
                                      'holds is saturated there (the npy files keep it)')
                    _save_png16(osp.join(out_dir, 'depth_png16', f'{frame.name}.png'),
                                np.minimum(result.depth, MAX_PNG_DEPTH))
                if video is not None:
                    video.add(frame.image, result.depth)
                if progress is not None:
                    progress.update()
                yield result
            if video is not None:
                video.close()
                video = None
        finally:
            if video is not None:
                video.discard()
            if progress is not None:
                progress.file.write('\n')
