import numpy as np
import pytest

from perception.fileio import (read_calib_file, read_label_file, read_label_rows, read_raw_calib_file,
                               write_calib_file, write_label_file)

GT_ROW = 'Car 0.15 1 -1.58 587.01 173.33 614.12 200.12 1.65 1.67 3.64 -0.65 1.71 46.70 -1.59\n'
DET_ROW = ('Pedestrian -1 -1 0.2500 100.0000 150.5000 120.2500 200.0000 1.7000 0.6000 0.8000 2.0000 1.5000 15.0000 '
           '0.3000 0.9512\n')
DONTCARE_ROW = 'DontCare -1 -1 -10.00 503.89 169.71 590.61 190.13 -1 -1 -1 -1000.00 -1000.00 -1000.00 -10.00\n'


def write(tmp_path, text, name='000000.txt'):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_read_ground_truth_fields(tmp_path):
    labels = read_label_file(write(tmp_path, GT_ROW + '\n' + DONTCARE_ROW))
    assert labels['name'].tolist() == ['Car', 'DontCare']
    assert labels['occluded'].dtype == np.int64 and labels['occluded'].tolist() == [1, -1]
    assert labels['truncated'][0] == 0.15  # float64: 0.15 parsed exactly as the devkit's %lf
    np.testing.assert_array_equal(labels['bbox'][0], [587.01, 173.33, 614.12, 200.12])
    np.testing.assert_array_equal(labels['dimensions'][0], [1.65, 1.67, 3.64])  # h, w, l
    np.testing.assert_array_equal(labels['location'][1], [-1000, -1000, -1000])
    assert labels['rotation_y'][0] == -1.59 and labels['alpha'][1] == -10
    assert 'score' not in labels


def test_read_detections_and_line_numbers(tmp_path):
    labels, linenos = read_label_rows(write(tmp_path, '\n' + DET_ROW + '\n\n' + DET_ROW))
    assert labels['score'].tolist() == [0.9512, 0.9512]
    assert linenos == [2, 5]


def test_empty_file(tmp_path):
    path = write(tmp_path, '')
    labels = read_label_file(path)
    assert labels['bbox'].shape == (0, 4) and len(labels['name']) == 0 and 'score' not in labels
    assert read_label_file(path, with_score=True)['score'].shape == (0, )


@pytest.mark.parametrize('text,with_score,message', [
    (GT_ROW + GT_ROW.rsplit(' ', 1)[0] + '\n', None, r':2: expected 15 or 16 columns .* got 14'),
    (GT_ROW, True, r':1: expected 16 columns'),
    (DET_ROW, False, r':1: expected 15 columns'),
    (GT_ROW + DET_ROW, None, r':2: expected 15 columns like the rows above, got 16'),
    (GT_ROW.replace('587.01', '587,01'), None, r':1: field "x1" must be a number'),
    (GT_ROW.replace('1.65', 'nan'), None, r':1: field "h" must be finite'),
    (GT_ROW.replace(' 1 -1.58', ' 0.5 -1.58'), None, r':1: field "occluded" must be an integer'),
])
def test_bad_rows_name_file_and_line(tmp_path, text, with_score, message):
    path = write(tmp_path, text)
    with pytest.raises(ValueError, match=str(path) + message):
        read_label_file(path, with_score)


def test_ground_truth_round_trip(tmp_path):
    path = write(tmp_path, GT_ROW + DONTCARE_ROW)
    labels = read_label_file(path)
    write_label_file(tmp_path / 'out.txt', labels)
    # The KITTI release format, byte for byte.
    assert (tmp_path / 'out.txt').read_text() == GT_ROW + DONTCARE_ROW


@pytest.mark.parametrize('folder', ['label_2', 'results'])
def test_round_trip_of_oracle_files(tmp_path, shared_dir, folder):
    paths = sorted((shared_dir / 'oracles/kitti').glob(f'*/{folder}/*.txt'))
    assert len(paths) >= 214
    for path in paths:
        labels = read_label_file(path, with_score=folder == 'results')
        write_label_file(tmp_path / 'out.txt', labels, with_score=folder == 'results')
        assert (tmp_path / 'out.txt').read_text() == path.read_text(), path


CALIB = {
    'P0': np.array([[721.5377, 0, 609.5593, 0], [0, 721.5377, 172.854, 0], [0, 0, 1, 0]]),
    'P2': np.array([[721.5377, 0, 609.5593, 44.85728], [0, 721.5377, 172.854, 0.2163791],
                    [0, 0, 1, 0.002745884]]),
    'R0_rect': np.array([[0.9999239, 0.00983776, -0.007445048], [-0.009869795, 0.9999421, -0.004278459],
                         [0.007402527, 0.004351614, 0.9999631]]),
    'Tr_velo_to_cam': np.arange(12, dtype=np.float64).reshape(3, 4) / 7,
}


def test_calib_round_trip(tmp_path):
    write_calib_file(tmp_path / 'calib.txt', CALIB)
    text = (tmp_path / 'calib.txt').read_text()
    assert text.startswith('P0: 7.215377000000e+02 0.000000000000e+00 ')
    calib = read_calib_file(tmp_path / 'calib.txt')
    assert sorted(calib) == sorted(CALIB)
    for key, value in CALIB.items():
        assert calib[key].shape == value.shape and calib[key].dtype == np.float64
        np.testing.assert_allclose(calib[key], value, rtol=1e-12)


def test_calib_tracking_spelling(tmp_path):
    path = write(tmp_path, 'P2: ' + ' '.join(['1'] * 12) + '\nR_rect: ' + ' '.join(['0'] * 9) + '\n')
    assert sorted(read_calib_file(path)) == ['P2', 'R0_rect']


@pytest.mark.parametrize('text,message', [
    ('P2: ' + ' '.join(['1'] * 11) + '\n', r':1: P2 needs 12 numbers \(3x4\), got 11'),
    ('P0: ' + ' '.join(['1'] * 12) + '\nR0_rect: 1 0 0 0 nan 0 0 0 1\n', r':2: field "R0_rect" must be finite'),
    ('P2 1 2 3\n', r':1: expected "<key>: <numbers>"'),
    ('K_00: 1 2 3\n', r":1: unknown key 'K_00'"),
    ('\n', r': no calibration entry'),
])
def test_bad_calib(tmp_path, text, message):
    path = write(tmp_path, text, 'calib.txt')
    with pytest.raises(ValueError, match=str(path) + message):
        read_calib_file(path)


def test_calib_required_keys(tmp_path):
    path = write(tmp_path, 'P2: ' + ' '.join(['1'] * 12) + '\n', 'calib.txt')
    assert sorted(read_calib_file(path, required=('P2', ))) == ['P2']
    with pytest.raises(ValueError, match=str(path) + ': calibration lacks R0_rect, Tr_velo_to_cam'):
        read_calib_file(path, required=('P2', 'R0_rect', 'Tr_velo_to_cam'))


def test_raw_calib(tmp_path):
    path = write(tmp_path, 'calib_time: 09-Jan-2012 13:57:47\nS_rect_02: 1242 375\nR: 1 0 0 0 1 0 0 0 1\n',
                 'calib_cam_to_cam.txt')
    calib = read_raw_calib_file(path)
    assert sorted(calib) == ['R', 'S_rect_02']
    assert calib['S_rect_02'].dtype == np.float64 and calib['S_rect_02'].tolist() == [1242., 375.]
    assert calib['R'].shape == (9, )


@pytest.mark.parametrize('text,message', [
    ('calib_time: 09-Jan-2012 13:57:47\nS_rect_02: 1242 375\nR_rect_00: 1 0 nan\n', r':3: R_rect_00 holds NaN'),
    ('P_rect_02: 1 2 x3\n', r':1: P_rect_02 holds a non-numeric value'),
    ('P_rect_02 1 2 3\n', r':1: expected "key: values"'),
])
def test_bad_raw_calib(tmp_path, text, message):
    path = write(tmp_path, text, 'calib_cam_to_cam.txt')
    with pytest.raises(ValueError, match=str(path) + message):
        read_raw_calib_file(path)
    with pytest.raises(FileNotFoundError, match='missing.txt does not exist'):
        read_raw_calib_file(tmp_path / 'missing.txt')
