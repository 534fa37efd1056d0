"""A single file is written whole or not at all."""

import stat

import pytest

from prunelab.files import write_whole


def test_a_file_is_written_whole_and_reads_like_any_other(tmp_path):
    path = tmp_path / "cut.json"
    write_whole(path, lambda file: file.write(b"first"))
    write_whole(path, lambda file: file.write(b"second"))
    assert path.read_bytes() == b"second"
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["cut.json"]


def test_a_failed_write_leaves_the_file_as_it_was_and_nothing_beside_it(tmp_path):
    path = tmp_path / "cache.pt"
    path.write_bytes(b"old")

    def half_then_fail(file):
        file.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_whole(path, half_then_fail)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["cache.pt"]
