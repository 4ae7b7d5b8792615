"""``tools/create_data.py`` synthetic subcommands: numeric arguments with bounds, and a --force that removes only
what the generator writes."""
import importlib.util
import warnings
from pathlib import Path

import pytest

from perception.datasets.converters.kitti_converter import create_kitti_infos
from perception.fileio import load_pickle

CREATE_DATA = Path(__file__).resolve().parents[3] / 'tools' / 'create_data.py'


def _create_data():
    spec = importlib.util.spec_from_file_location('create_data', CREATE_DATA)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize('argv', [
    ['synthetic-kitti', '--num-train', '-3'],
    ['synthetic-kitti', '--num-val', '-1'],
    ['synthetic-kitti', '--workers', '0'],
    ['synthetic-kitti', '--seed', '-5'],
    ['synthetic-kitti', '--num-train', '2.5'],
    ['synthetic-kitti-raw', '--num-drives', '0'],
    ['synthetic-kitti-raw', '--frames-per-drive', '-2'],
    ['synthetic-kitti-raw', '--num-test-drives', '-1'],
    ['synthetic-nuscenes', '--num-scenes', '0'],
    ['synthetic-nuscenes', '--num-val-scenes', '-1'],
    ['synthetic-nuscenes', '--samples-per-scene', '0'],
    ['synthetic-nuscenes', '--image-scale', '0'],
    ['synthetic-nuscenes', '--image-scale', 'nan'],
    ['synthetic-coco', '--num-train', '-1'],
    ['synthetic-coco', '--workers', '-2'],
])
def test_numeric_arguments_are_bounded(argv, capsys):
    """Issue 21 defect 6: --num-train -3 exited 0 and wrote a broken dataset."""
    with pytest.raises(SystemExit) as exit_info:
        _create_data().parse_args(argv)
    assert exit_info.value.code == 2
    assert f'argument {argv[1]}: ' in capsys.readouterr().err


def test_force_removes_only_what_the_generator_writes(tmp_path):
    """Issue 21 defect 6: --force emptied the target folder and deleted an unrelated file."""
    create_data = _create_data()
    out = tmp_path / 'data'
    out.mkdir()
    (out / 'thesis.tex').write_text('a file of the user')
    argv = ['synthetic-kitti', '--out', str(out), '--num-train', '0', '--num-val', '1', '--workers', '1', '--force']
    with pytest.raises(FileExistsError, match='thesis.tex.*does not write'):
        create_data.main(argv)
    assert sorted(p.name for p in out.iterdir()) == ['thesis.tex']
    assert (out / 'thesis.tex').read_text() == 'a file of the user'

    (out / 'thesis.tex').unlink()
    with pytest.warns(UserWarning, match='train.txt is an empty split'):  # --num-train 0: on purpose, said so
        create_data.main(argv)
    assert (out / 'ImageSets' / 'train.txt').read_text() == ''
    assert (out / 'ImageSets' / 'val.txt').read_text() == '000000\n'
    with pytest.warns(UserWarning, match='train.txt lists no frame'):  # and the info converter says so too
        create_kitti_infos(str(out), with_lidar=False)
    assert load_pickle(out / 'kitti_infos_train.pkl')['data_list'] == []

    # An earlier output, info files included, is replaced by --force (and refused without it).
    (out / 'training' / 'label_2' / '000007.txt').write_text('of a larger earlier run')
    with pytest.raises(FileExistsError, match='--force'):
        create_data.main(argv[:-1])
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        create_data.main(argv)
    assert not (out / 'training' / 'label_2' / '000007.txt').exists()
    assert not (out / 'kitti_infos_train.pkl').exists()
    assert sorted(p.name for p in out.iterdir()) == ['ImageSets', 'training']
