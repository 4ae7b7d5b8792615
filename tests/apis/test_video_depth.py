"""VideoDepthInferencer: every input kind, the window bookkeeping of temporal models, the writers, the temporal
alignment, a per-frame TiO-Depth (tiny input) end to end and through the CLI, and the bad inputs."""
import importlib.util
import os
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from mmengine.config import Config
from torch import nn

from perception.apis import VideoDepthInferencer
from perception.apis.video_depth import open_frames
from perception.fileio.depth import read_depth_png

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / 'configs/tiodepth/tiodepth-mono_swin-w32_12e_synthkittiraw-depth.py'
RAW = 'data/kitti_raw_mini/2011_09_26'
# The synthetic TiO-Depth at a 64x32 network input, so that a frame takes milliseconds.
TINY = {'test_dataloader.dataset.pipeline.2.transforms.0.scale': (64, 32)}


def _frame(index: int, size=(24, 32)) -> np.ndarray:
    """A frame whose grey level encodes its index (a flat image survives video compression)."""
    return np.full((*size, 3), 10 * index + 5, np.uint8)


def _index(image) -> int:
    return int(round((float(image.mean()) - 5) / 10))


def _write_video(path: Path, count: int, size=(24, 32), fps: float = 10.) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*'mp4v'), fps, (size[1], size[0]))
    for i in range(count):
        writer.write(_frame(i, size))
    writer.release()


class WindowStandIn(nn.Module):
    """A temporal model of window 10, stride 5 and context 5 (ChronoDepth's) that records what it sees: the
    frame indices of each window (read from the grey levels) and the context depths it is given; its depth of
    frame i is i + 1 everywhere."""
    video_window = (10, 5, 5)

    def __init__(self, window=(10, 5, 5)):
        super().__init__()
        self.video_window = window
        self.calls = []

    def video_input_size(self, height, width):
        return 8, 12

    def predict_window(self, images, num_context, context_depths, state):
        assert images.shape[1:] == (3, 8, 12) and len(images) <= self.video_window[0]
        ids = [_index(img * 255) for img in images]
        context = [] if context_depths is None else [int(d[0, 0]) - 1 for d in context_depths]
        assert context == ids[:num_context]
        self.calls.append((ids[:num_context], ids[num_context:], state))
        new = torch.tensor(ids[num_context:], dtype=torch.float32) + 1
        return new.view(-1, 1, 1).expand(-1, 8, 12).clone(), len(self.calls)


class AffineStandIn(nn.Module):
    """A relative-depth model with a known scale and shift per frame: frame i gives s_i * D + b_i."""
    video_window = (1, 1, 0)

    def __init__(self, base, scales, shifts):
        super().__init__()
        self.base, self.scales, self.shifts = base, scales, shifts

    def predict_window(self, images, num_context, context_depths, state):
        i = _index(images[0] * 255)
        return (self.scales[i] * self.base + self.shifts[i])[None], state


@pytest.fixture(scope='module')
def tiny_tiodepth():
    torch.manual_seed(0)
    return VideoDepthInferencer(CONFIG, cfg_options=TINY, show_progress=False)


def _drive(tmp_path: Path, shared_dir: Path, count: int = 3, size=(30, 80)) -> Path:
    """A KITTI raw drive folder with the real calibration and small stereo frames."""
    date = tmp_path / '2011_09_26'
    drive = date / '2011_09_26_drive_0001_sync'
    for cam in ('image_02', 'image_03'):
        (drive / cam / 'data').mkdir(parents=True)
    for name in ('calib_cam_to_cam.txt', 'calib_velo_to_cam.txt'):
        (date / name).write_bytes((shared_dir / RAW / name).read_bytes())
    rng = np.random.default_rng(1)
    for i in range(count):
        left = rng.integers(0, 255, (*size, 3), dtype=np.uint8)
        cv2.imwrite(str(drive / 'image_02' / 'data' / f'{i:010d}.png'), left)
        cv2.imwrite(str(drive / 'image_03' / 'data' / f'{i:010d}.png'), np.roll(left, -2, axis=1))
    return drive


# ---------------------------------------------------------------------------------------------- input kinds

def test_reads_an_mp4_frame_by_frame(tmp_path):
    _write_video(tmp_path / 'clip.mp4', 12, fps=12.)
    source = open_frames(tmp_path / 'clip.mp4')
    assert (source.name, source.num_frames, source.fps) == ('clip', 12, 12.)
    frames = list(source.frames)
    assert [_index(f.image) for f in frames] == list(range(12)) and frames[0].image.shape == (24, 32, 3)
    assert [f.name for f in frames[:2]] == ['000000', '000001']


def test_reads_a_folder_in_natural_order(tmp_path):
    for i in (1, 2, 10):
        cv2.imwrite(str(tmp_path / f'frame{i}.png'), _frame(i))
    (tmp_path / 'notes.txt').write_text('not a frame')
    frames = list(open_frames(tmp_path).frames)
    assert [f.name for f in frames] == ['frame1', 'frame2', 'frame10']
    assert [_index(f.image) for f in frames] == [1, 2, 10]


def test_reads_a_kitti_raw_drive_with_partners_and_calibration(tmp_path, shared_dir):
    drive = _drive(tmp_path, shared_dir)
    source = open_frames(drive, with_partner=True)
    frames = list(source.frames)
    assert [f.name for f in frames] == [f'{i:010d}' for i in range(3)]
    assert all(f.partner is not None and f.partner.shape == f.image.shape for f in frames)
    assert source.baseline == pytest.approx(0.54, abs=0.01) and source.cam2img[0, 0] == pytest.approx(721.5377)


def test_reads_an_iterable_lazily():
    pulled = []

    def frames():
        for i in range(30):
            pulled.append(i)
            yield _frame(i)

    inferencer = VideoDepthInferencer(WindowStandIn(), show_progress=False)
    results = inferencer(frames())
    first = next(results)
    assert first.index == 0 and len(pulled) == 10  # one window, not the whole stream
    assert [r.index for r in results] == list(range(1, 30))


# ---------------------------------------------------------------------------------- the temporal interface

def test_window_bookkeeping_of_a_temporal_model():
    model = WindowStandIn()
    results = list(VideoDepthInferencer(model, show_progress=False)(_frame(i) for i in range(23)))
    assert model.calls == [([], list(range(10)), None), (list(range(5, 10)), list(range(10, 15)), 1),
                           (list(range(10, 15)), list(range(15, 20)), 2), (list(range(15, 20)), [20, 21, 22], 3)]
    assert [r.index for r in results] == list(range(23))
    assert all(r.depth.shape == (24, 32) and np.all(r.depth == r.index + 1) for r in results)
    assert not results[0].metric


def test_window_shorter_video_and_other_windows():
    model = WindowStandIn()
    list(VideoDepthInferencer(model, show_progress=False)(_frame(i) for i in range(7)))
    assert model.calls == [([], list(range(7)), None)]
    model = WindowStandIn((4, 3, 1))
    results = list(VideoDepthInferencer(model, show_progress=False)(_frame(i) for i in range(9)))
    assert [(c, n) for c, n, _ in model.calls] == [([], [0, 1, 2, 3]), ([3], [4, 5, 6]), ([6], [7, 8])]
    assert [r.index for r in results] == list(range(9))
    with pytest.raises(ValueError, match='context \\+ stride <= window'):
        VideoDepthInferencer(WindowStandIn((4, 3, 2)))


# ---------------------------------------------------------------------------------------------- alignment

def test_alignment_removes_known_scale_and_shift():
    base = torch.linspace(2., 30., 8 * 12).view(8, 12)
    model = AffineStandIn(base, scales=[1., 2., 0.5, 3.], shifts=[0., 1., -0.5, 4.])
    model.video_input_size = lambda h, w: (8, 12)
    frames = [_frame(i) for i in range(4)]
    raw = list(VideoDepthInferencer(model, show_progress=False)(iter(frames)))
    assert raw[1].depth[0, 0] == pytest.approx(2 * 2 + 1, rel=1e-4)
    expected = cv2.resize(base.numpy(), (32, 24), interpolation=cv2.INTER_LINEAR)
    for align in ('first', 'running'):
        for result in VideoDepthInferencer(model, show_progress=False)(iter(frames), align=align):
            assert np.allclose(result.depth, expected, rtol=1e-4), (align, result.index)


# ------------------------------------------------------------------------------- TiO-Depth, writers and CLI

def test_per_frame_tiodepth_batches_and_calibration(tiny_tiodepth, tmp_path, shared_dir):
    drive = _drive(tmp_path, shared_dir, count=3)
    metric = list(tiny_tiodepth(drive))
    assert [r.index for r in metric] == [0, 1, 2] and all(r.metric for r in metric)
    assert metric[0].depth.shape == (30, 80) and metric[0].depth.dtype == np.float32
    batched = list(tiny_tiodepth(drive, batch_size=2))
    for a, b in zip(metric, batched):
        assert np.allclose(a.depth, b.depth, rtol=1e-4)
    # The same images without calibration: relative depth, the model's default fx * baseline instead of
    # fx (scaled to the 64 px input) times the drive's baseline.
    relative = list(tiny_tiodepth(drive / 'image_02' / 'data'))
    assert not relative[0].metric
    calib = open_frames(drive)
    ratio = calib.cam2img[0, 0] * 64 / 80 * calib.baseline / tiny_tiodepth.model.focal_baseline
    assert np.allclose(metric[1].depth, relative[1].depth * ratio, rtol=1e-4)
    # The binocular output reads the partner view: shifting it changes the depth, the left view alone does not.
    torch.manual_seed(0)
    stereo = VideoDepthInferencer(CONFIG, cfg_options=dict(TINY, **{'model.test_out_modes': ['stereo']}),
                                  show_progress=False)
    first = next(iter(stereo(drive)))
    cv2.imwrite(str(drive / 'image_03' / 'data' / '0000000000.png'), np.zeros((30, 80, 3), np.uint8))
    assert first.metric and not np.allclose(next(iter(stereo(drive))).depth, first.depth)


def test_writers_round_trip(tiny_tiodepth, tmp_path):
    _write_video(tmp_path / 'clip.mp4', 6)
    out = tmp_path / 'out'
    results = list(tiny_tiodepth(tmp_path / 'clip.mp4', out_dir=out, save=('npy', 'png16', 'video')))
    for r in results:
        assert np.array_equal(np.load(out / 'depth_npy' / f'{r.name}.npy'), r.depth)
        png = read_depth_png(out / 'depth_png16' / f'{r.name}.png')
        assert np.abs(png - np.minimum(r.depth, 255.99)).max() <= 1 / 512 + 1e-6
    video = cv2.VideoCapture(str(out / 'clip_depth.mp4'))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 6
    assert (video.get(cv2.CAP_PROP_FRAME_WIDTH), video.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (64, 24)
    count = 0
    while video.read()[0]:
        count += 1
    assert count == 6
    assert sorted(os.listdir(out)) == ['clip_depth.mp4', 'depth_npy', 'depth_png16']
    mode = os.stat(out / 'clip_depth.mp4').st_mode & 0o777
    assert mode == os.stat(out / 'depth_npy' / '000000.npy').st_mode & 0o777 == 0o666 & ~_umask()


@pytest.mark.slow
def test_cli_writes_one_depth_per_frame_and_an_mp4(tmp_path):
    _write_video(tmp_path / 'clip.mp4', 5)
    spec = importlib.util.spec_from_file_location('infer_video_depth', REPO / 'tools/infer_video_depth.py')
    cli = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(cli)
    cli.main([str(tmp_path / 'clip.mp4'), str(CONFIG), '--out-dir', str(tmp_path / 'out'), '--save',
              'npy,video', '--cfg-options', 'test_dataloader.dataset.pipeline.2.transforms.0.scale=(64,32)'])
    assert len(os.listdir(tmp_path / 'out' / 'depth_npy')) == 5
    assert cv2.VideoCapture(str(tmp_path / 'out' / 'clip_depth.mp4')).get(cv2.CAP_PROP_FRAME_COUNT) == 5


def _umask() -> int:
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


# ---------------------------------------------------------------------------------------------- bad inputs

def test_unreadable_empty_and_truncated_videos_name_the_file(tmp_path):
    (tmp_path / 'empty.mp4').write_bytes(b'')
    (tmp_path / 'noise.mp4').write_bytes(np.random.default_rng(0).bytes(5000))
    _write_video(tmp_path / 'full.mp4', 20)
    data = (tmp_path / 'full.mp4').read_bytes()
    (tmp_path / 'cut.mp4').write_bytes(data[:len(data) // 2])
    model = WindowStandIn()
    for name in ('empty.mp4', 'noise.mp4', 'cut.mp4'):
        with pytest.raises(ValueError, match=name):
            list(VideoDepthInferencer(model, show_progress=False)(tmp_path / name))
    with pytest.raises(FileNotFoundError, match='missing.mp4'):
        VideoDepthInferencer(model)(tmp_path / 'missing.mp4')


def test_folder_without_images_and_frames_of_changing_size(tmp_path):
    (tmp_path / 'empty').mkdir()
    with pytest.raises(FileNotFoundError, match='empty: no image'):
        VideoDepthInferencer(WindowStandIn())(tmp_path / 'empty')
    (tmp_path / 'mixed').mkdir()
    for i in range(3):
        cv2.imwrite(str(tmp_path / 'mixed' / f'{i}.png'), _frame(i, (24, 32) if i < 2 else (24, 30)))
    with pytest.raises(ValueError, match='frame 2 \\(2\\) has size \\(24, 30\\)'):
        list(VideoDepthInferencer(WindowStandIn(), show_progress=False)(tmp_path / 'mixed'))
    with pytest.raises(ValueError, match='frame 1 .* not an \\(H, W, 3\\) uint8'):
        list(VideoDepthInferencer(WindowStandIn(), show_progress=False)(iter([_frame(0), _frame(1)[..., 0]])))


def test_model_config_mismatch_names_the_files(tmp_path, tiny_tiodepth):
    other = Config.fromfile(CONFIG)
    other.model.decoder_channels = (8, 16, 32, 32)
    ckpt = tmp_path / 'other.pth'
    torch.save({'state_dict': VideoDepthInferencer(other, show_progress=False).model.state_dict()}, ckpt)
    with pytest.raises(ValueError, match='other.pth does not fit the model TiODepth'):
        VideoDepthInferencer(CONFIG, str(ckpt))
    stereo = VideoDepthInferencer(CONFIG, cfg_options=dict(TINY, **{'model.test_out_modes': ['stereo']}))
    _write_video(tmp_path / 'clip.mp4', 3)
    with pytest.raises(ValueError, match='clip.mp4: a stereo model needs a KITTI raw drive'):
        stereo(tmp_path / 'clip.mp4')
    with pytest.raises(ValueError, match='for relative depth'):
        list(tiny_tiodepth(_drive(tmp_path, Path(REPO / 'tests/data')), align='running'))


def test_an_interrupted_run_leaves_complete_files_only(tmp_path):
    out = tmp_path / 'out'
    stream = VideoDepthInferencer(WindowStandIn(), show_progress=False)((_frame(i) for i in range(23)),
                                                                        out_dir=out, save=('npy', 'png16', 'video'))
    for _ in range(12):
        next(stream)
    stream.close()  # the consumer leaves
    assert sorted(os.listdir(out)) == ['depth_npy', 'depth_png16']  # no mp4, no temporary file
    assert sorted(os.listdir(out / 'depth_npy')) == [f'{i:06d}.npy' for i in range(12)]
    assert all(np.load(out / 'depth_npy' / f'{i:06d}.npy')[0, 0] == i + 1 for i in range(12))
    # An error in the middle of the stream (a frame of another size) ends the same way.
    frames = [_frame(i) for i in range(14)] + [_frame(14, (20, 32))]
    with pytest.raises(ValueError, match='frame 14'):
        list(VideoDepthInferencer(WindowStandIn(), show_progress=False)(iter(frames), out_dir=tmp_path / 'b'))
    assert sorted(os.listdir(tmp_path / 'b')) == ['depth_npy']
