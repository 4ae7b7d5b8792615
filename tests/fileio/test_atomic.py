"""Atomic writes: a file appears complete under its final name or not at all."""
import os

import pytest

from perception.fileio import atomic_write


def test_atomic_write_keeps_old_file_when_killed(tmp_path):
    target = tmp_path / 'epoch_1.pth'
    target.write_bytes(b'complete old checkpoint')

    def killed_mid_write(tmp):
        with open(tmp, 'wb') as f:
            f.write(b'\x80\x02partial')
        raise KeyboardInterrupt  # what a signal does in the middle of torch.save

    with pytest.raises(KeyboardInterrupt):
        atomic_write(str(target), killed_mid_write)
    assert target.read_bytes() == b'complete old checkpoint'
    assert os.listdir(tmp_path) == ['epoch_1.pth']  # no temporary file left behind


def test_atomic_write_of_a_new_file(tmp_path):
    target = tmp_path / 'sub' / 'x.json'

    def write(tmp):
        assert os.path.dirname(tmp) == str(tmp_path / 'sub')  # same folder: the rename cannot cross disks
        with open(tmp, 'w') as f:
            f.write('{"a": 1}')

    atomic_write(target, write)
    assert target.read_text() == '{"a": 1}'
    assert os.listdir(tmp_path / 'sub') == ['x.json']
