import filecmp

import cv2
import numpy as np
import pytest

from perception.datasets.synthetic import KittiRig, generate_kitti_object, render_kitti_frame
from perception.datasets.synthetic.labels import kitti_labels
from perception.datasets.synthetic.render import World
from perception.datasets.synthetic.scene import KITTI_CLASSES, SceneObject, Street
from perception.fileio.kitti import read_calib_file, read_label_file

SEED = 3
NUM_TRAIN, NUM_VAL = 3, 1


@pytest.fixture(scope='module')
def kitti_root(tmp_path_factory):
    out = tmp_path_factory.mktemp('synthkitti')
    generate_kitti_object(out, num_train=NUM_TRAIN, num_val=NUM_VAL, seed=SEED, workers=1, progress=False)
    return out


def _frames(root):
    return sorted(p.stem for p in (root / 'training' / 'label_2').glob('*.txt'))


def _in_box(points, loc, dims, ry):
    """Mask of camera-frame points inside a KITTI box (bottom-centre location, dims h, w, l)."""
    h, w, l = dims
    d = points - loc
    c, s = np.cos(ry), np.sin(ry)
    along = d[:, 0] * c - d[:, 2] * s  # the box's length axis is (cos ry, 0, -sin ry)
    across = d[:, 0] * s + d[:, 2] * c
    return (np.abs(along) < l / 2) & (np.abs(across) < w / 2) & (d[:, 1] < 0) & (d[:, 1] > -h)


def test_layout_and_splits(kitti_root):
    sets = kitti_root / 'ImageSets'
    train = sets.joinpath('train.txt').read_text().split()
    val = sets.joinpath('val.txt').read_text().split()
    assert train == ['000000', '000001', '000002'] and val == ['000003']
    for name in train + val:
        for sub, ext in (('image_2', 'png'), ('image_3', 'png'), ('calib', 'txt'), ('velodyne', 'bin')):
            assert (kitti_root / 'training' / sub / f'{name}.{ext}').is_file()
        image = cv2.imread(str(kitti_root / 'training' / 'image_2' / f'{name}.png'))
        assert image.shape == (375, 1242, 3)
        assert image.std() > 20, 'a rendered frame should have texture, not flat colour'


def test_labels_parse_and_follow_kitti_semantics(kitti_root):
    from mmdet3d.structures import CameraInstance3DBoxes
    n_objects = 0
    for name in _frames(kitti_root):
        labels = read_label_file(kitti_root / 'training' / 'label_2' / f'{name}.txt', with_score=False)
        calib = read_calib_file(kitti_root / 'training' / 'calib' / f'{name}.txt')
        P2 = calib['P2']
        assert abs(P2[0, 0] - 721.54) < 0.01 and abs(P2[0, 2] - 609.56) < 0.01 and abs(P2[1, 2] - 172.85) < 0.01
        assert abs((P2[0, 3] - calib['P3'][0, 3]) / P2[0, 0] - 0.54) < 1e-9
        keep = labels['name'] != 'DontCare'
        assert set(labels['name'][keep]) <= set(KITTI_CLASSES)
        assert (labels['name'][~keep].size == 0) or (labels['location'][~keep] == -1000).all()
        dims = labels['dimensions'][keep]  # h, w, l
        loc, ry, bbox = labels['location'][keep], labels['rotation_y'][keep], labels['bbox'][keep]
        n_objects += len(loc)
        assert (np.abs(loc[:, 1] - 1.65) < 1e-6).all(), 'objects stand on the ground 1.65 m below the camera'
        dist = np.hypot(loc[:, 0], loc[:, 2])
        assert (dist >= 4.0).all() and (dist <= 70.0).all()
        alpha = labels['alpha'][keep]
        expected = (ry - np.arctan2(loc[:, 0], loc[:, 2]) + np.pi) % (2 * np.pi) - np.pi
        assert np.allclose(np.cos(alpha - expected), 1, atol=1e-3)
        # The 3D centre projected with the calibration falls inside the 2D box.
        centres = loc - np.stack([np.zeros(len(loc)), dims[:, 0] / 2, np.zeros(len(loc))], 1)
        uvw = centres @ P2[:, :3].T + P2[:, 3]
        uv = uvw[:, :2] / uvw[:, 2:]
        inside_image = (uv[:, 0] >= 0) & (uv[:, 0] <= 1241) & (uv[:, 1] >= 0) & (uv[:, 1] <= 374)
        assert (uv[inside_image, 0] >= bbox[inside_image, 0] - 0.01).all()
        assert (uv[inside_image, 0] <= bbox[inside_image, 2] + 0.01).all()
        assert (uv[inside_image, 1] >= bbox[inside_image, 1] - 0.01).all()
        assert (uv[inside_image, 1] <= bbox[inside_image, 3] + 0.01).all()
        # mmdet3d's convention: (x, y, z, l, h, w, ry); the 2D box of an untruncated object is its
        # projected corners' extent.
        boxes = CameraInstance3DBoxes(np.concatenate([loc, dims[:, [2, 0, 1]], ry[:, None]], 1))
        corners = boxes.corners.numpy().astype(np.float64)
        uvw = corners @ P2[:, :3].T + P2[:, 3]
        uv = uvw[..., :2] / uvw[..., 2:]
        full = labels['truncated'][keep] == 0
        extent = np.concatenate([uv.min(1), uv.max(1)], 1)
        assert np.abs(extent[full] - bbox[full]).max() < 0.02
        trunc = labels['truncated'][keep]
        touches = (bbox[:, 0] <= 0) | (bbox[:, 2] >= 1241) | (bbox[:, 1] <= 0) | (bbox[:, 3] >= 374)
        assert (trunc[~touches] == 0).all() and (trunc[touches] > 0).all()
        assert set(labels['occluded'][keep]) <= {0, 1, 2, 3}
    assert n_objects >= 5


def test_lidar_points_in_label_boxes_are_the_object_returns(kitti_root):
    rig = KittiRig()
    for index, name in enumerate(_frames(kitti_root)[:2]):
        velo = np.fromfile(kitti_root / 'training' / 'velodyne' / f'{name}.bin', np.float32).reshape(-1, 4)
        calib = read_calib_file(kitti_root / 'training' / 'calib' / f'{name}.txt')
        labels = read_label_file(kitti_root / 'training' / 'label_2' / f'{name}.txt')
        rect = (velo[:, :3].astype(np.float64) @ calib['Tr_velo_to_cam'][:, :3].T + calib['Tr_velo_to_cam'][:, 3])
        rect = rect @ calib['R0_rect'].T
        frame = render_kitti_frame(SEED, index, rig)
        assert len(frame.scan.points) == len(velo)
        # The LiDAR is ~1.73 m up; through the calibration its ground returns land 1.65 m below camera 0.
        near = np.hypot(velo[:, 0], velo[:, 1]) < 8
        assert abs(np.median(velo[near, 2]) + 1.73) < 0.15
        assert abs(np.percentile(rect[near, 1], 95) - 1.655) < 0.01
        tracks = frame.labels['track_id'][frame.labels['name'] != 'DontCare']
        keep = labels['name'] != 'DontCare'
        for track, loc, dims, ry in zip(tracks, labels['location'][keep], labels['dimensions'][keep],
                                        labels['rotation_y'][keep]):
            inside = _in_box(rect, loc, dims, ry)
            assert inside.sum() == (frame.scan.instance == track + 1).sum()
            assert (frame.scan.instance[inside] == track + 1).all()


def test_stereo_disparity_is_f_b_over_depth():
    rig = KittiRig()
    frame = render_kitti_frame(SEED, 0, rig)
    depth_l, depth_r = frame.left.depth, frame.right.depth
    v, u = np.nonzero((depth_l > 2) & (depth_l < 60))
    z = depth_l[v, u]
    u_r = np.round(u - rig.focal * rig.baseline / z).astype(int)
    ok = u_r >= 0
    v, u, z, u_r = v[ok], u[ok], z[ok], u_r[ok]
    # Where the right camera sees the same surface point, it sees it at u - f * B / z.
    same = frame.right.instance[v, u_r] == frame.left.instance[v, u]
    rel = np.abs(depth_r[v, u_r] - z) / z
    assert (same & (rel < 0.02)).mean() > 0.9
    left = frame.left.image.astype(int)
    right = frame.right.image.astype(int)
    colour = np.abs(right[v, u_r] - left[v, u]).sum(-1)
    assert np.median(colour) <= 3
    # The texture grain tells disparities apart: 0.8 x f * B / z does not match.
    wrong = np.round(u - 0.8 * rig.focal * rig.baseline / z).astype(int)
    ok = wrong >= 0
    assert np.abs(right[v[ok], wrong[ok]] - left[v[ok], u[ok]]).sum(-1).mean() > colour.mean() + 10


def test_occlusion_and_truncation_from_visibility():
    street = Street(3.5, np.array([0.0]), np.array([1]), 5.0, -5.0, 3.0, [])
    spec = KITTI_CLASSES['Car']
    size = np.array([4.0, 1.8, 1.5])
    front = SceneObject('Car', size, np.array([12.0, 0.0, 0.0]), 0.0, spec=spec, track_id=0)
    behind = SceneObject('Car', size, np.array([25.0, 0.3, 0.0]), 0.0, spec=spec, track_id=1)
    side = SceneObject('Car', size, np.array([6.0, -4.2, 0.0]), 0.0, spec=spec, track_id=2)
    rig = KittiRig()
    world = World(street, [front, behind, side])
    view = world.render(rig.K, rig.cam2ego(2), rig.width, rig.height)
    labels = kitti_labels([front, behind, side], world, view.instance, np.linalg.inv(rig.rect2ego), rig.P(2),
                          rig.cam2ego(2))
    by_track = {t: i for i, t in enumerate(labels['track_id'])}
    f, b, s = by_track[0], by_track[1], by_track[2]
    assert labels['occluded'][f] == 0 and labels['truncated'][f] == 0 and labels['visible'][f] > 0.95
    assert labels['visible'][b] < 0.4 and labels['occluded'][b] >= 2
    assert labels['truncated'][s] > 0.05 and labels['bbox'][s][2] == rig.width - 1


def test_same_seed_same_bytes_whatever_the_workers(kitti_root, tmp_path):
    again = tmp_path / 'again'
    generate_kitti_object(again, num_train=NUM_TRAIN, num_val=NUM_VAL, seed=SEED, workers=2, progress=False)
    files = sorted(p.relative_to(kitti_root) for p in kitti_root.rglob('*') if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob('*') if p.is_file())
    assert all(filecmp.cmp(kitti_root / f, again / f, shallow=False) for f in files)
    with pytest.raises(FileExistsError, match='--force'):
        generate_kitti_object(again, num_train=1, num_val=0, seed=SEED + 1, workers=1, progress=False)
    generate_kitti_object(again, num_train=1, num_val=0, seed=SEED + 1, workers=1, force=True, progress=False)
    assert not filecmp.cmp(kitti_root / 'training/velodyne/000000.bin', again / 'training/velodyne/000000.bin',
                           shallow=False)
    assert not (again / 'training' / 'label_2' / '000001.txt').exists()


def test_mono_writes_the_same_left_view_and_labels_only(kitti_root, tmp_path):
    mono = tmp_path / 'mono'
    counts = generate_kitti_object(mono, num_train=1, num_val=0, seed=SEED, workers=1, progress=False, mono=True)
    assert 'points' not in counts and counts['frames'] == 1
    assert sorted(p.name for p in (mono / 'training').iterdir()) == ['calib', 'image_2', 'label_2']
    for sub, ext in (('image_2', 'png'), ('calib', 'txt'), ('label_2', 'txt')):
        assert filecmp.cmp(kitti_root / 'training' / sub / f'000000.{ext}', mono / 'training' / sub / f'000000.{ext}',
                           shallow=False), sub
