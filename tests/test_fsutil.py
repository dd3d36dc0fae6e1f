"""fsutil.unlink_with_temps: removing a record also removes a temp file of it that a killed
writer left between writing and renaming (a crash mid-apply, then `down`), and nothing else."""

from __future__ import annotations

from wggw.fsutil import atomic_write, unlink_with_temps


def test_a_record_goes_with_the_temp_files_a_killed_writer_left(tmp_path):
    record = tmp_path / ".sysctl-4026531840.json"
    atomic_write(record, "{}")
    stale = tmp_path / f".{record.name}.hi6te2ky.tmp"  # as mkstemp names it
    stale.write_text("{")
    other = tmp_path / ".nft-4026531840.json.x1.tmp"
    other.write_text("")
    unlink_with_temps(record)
    assert sorted(p.name for p in tmp_path.iterdir()) == [other.name]
    unlink_with_temps(record)  # nothing left: no error
    unlink_with_temps(tmp_path / "gone" / "record.json")  # no directory: no error
