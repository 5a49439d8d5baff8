from __future__ import annotations

import json
from pathlib import Path

import pytest

from tvmx.build.builddir import BuildDir, atomic_write, sha256_file
from tvmx.errors import InputError


def test_manifest_records_hashes_and_up_to_date(tmp_path: Path) -> None:
    build = BuildDir(tmp_path / "b")
    build.start({"model": "abc"}, {"target_name": "t"})
    out = build.stage_dir(1, "import") / "module.py"
    atomic_write(out, "x = 1\n")
    build.record_stage("import", [], [out], {})
    assert not build.is_up_to_date({"model": "abc"})  # not finished yet
    build.finish({})
    manifest = json.loads((tmp_path / "b" / "manifest.json").read_text())
    assert manifest["stages"][0]["outputs"] == {"01-import/module.py": sha256_file(out)}
    assert BuildDir(tmp_path / "b").is_up_to_date({"model": "abc"})
    assert not BuildDir(tmp_path / "b").is_up_to_date({"model": "other"})
    out.write_text("x = 2\n")  # a hand-edited artifact is not up to date
    assert not BuildDir(tmp_path / "b").is_up_to_date({"model": "abc"})


def test_start_removes_only_what_an_earlier_build_created(tmp_path: Path) -> None:
    build = BuildDir(tmp_path)
    build.start({}, {})
    stale = build.stage_dir(6, "assemble") / "model.elf"
    atomic_write(stale, "old")
    build.record_stage("assemble", [], [stale], {})
    # the user's files, added after that build: inside a stage folder and next to it
    (tmp_path / "06-assemble" / "notes.txt").write_text("mine")
    (tmp_path / "01-mine").mkdir()
    (tmp_path / "01-mine" / "data.txt").write_text("mine")
    (tmp_path / "2024-notes.txt").write_text("mine")
    BuildDir(tmp_path).start({}, {})
    assert not stale.exists()
    assert (tmp_path / "06-assemble" / "notes.txt").read_text() == "mine"
    assert (tmp_path / "01-mine" / "data.txt").read_text() == "mine"
    assert (tmp_path / "2024-notes.txt").read_text() == "mine"


def test_a_folder_of_other_files_is_refused_unless_forced(tmp_path: Path) -> None:
    (tmp_path / "01-mine").mkdir()
    (tmp_path / "01-mine" / "data.txt").write_text("mine")
    with pytest.raises(InputError, match="did not create"):
        BuildDir(tmp_path).start({}, {})
    build = BuildDir(tmp_path)
    build.start({}, {}, force=True)
    atomic_write(build.stage_dir(1, "import") / "module.py", "x = 1\n")
    build.finish({})
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert "01-import/module.py" in manifest["created"]
    assert "01-mine/data.txt" not in manifest["created"]
    BuildDir(tmp_path).start({}, {})  # now a tvmx folder: the next build needs no --force
    assert (tmp_path / "01-mine" / "data.txt").read_text() == "mine"
    assert not (tmp_path / "01-import").exists()


def test_a_doctored_manifest_cannot_delete_outside_the_folder(tmp_path: Path) -> None:
    outside = tmp_path / "precious.txt"
    outside.write_text("mine")
    build = BuildDir(tmp_path / "b")
    build.start({}, {})
    manifest = json.loads(build.manifest_path.read_text())
    manifest["created"] += ["../precious.txt", str(outside)]
    build.manifest_path.write_text(json.dumps(manifest))
    BuildDir(tmp_path / "b").start({}, {})
    assert outside.read_text() == "mine"


def test_claimed_run_outputs_are_removed_by_the_next_build(tmp_path: Path) -> None:
    build = BuildDir(tmp_path)
    build.start({}, {})
    build.finish({})
    run = tmp_path / "run"
    run.mkdir()
    (run / "y.npy").write_bytes(b"1")
    (run / "mine.txt").write_text("mine")
    BuildDir(tmp_path).claim([run / "y.npy"])
    BuildDir(tmp_path).start({}, {})
    assert not (run / "y.npy").exists()
    assert (run / "mine.txt").exists()


def test_atomic_write_leaves_no_temporary_and_is_readable(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    atomic_write(target, "one")
    atomic_write(target, b"two")
    assert target.read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
    assert target.stat().st_mode & 0o777 == 0o644
