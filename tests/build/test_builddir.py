from __future__ import annotations

import json
from pathlib import Path

from tvmx.build.builddir import BuildDir, atomic_write, sha256_file


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


def test_start_removes_stale_stage_folders(tmp_path: Path) -> None:
    build = BuildDir(tmp_path)
    stale = build.stage_dir(6, "assemble") / "model.elf"
    stale.write_text("old")
    (tmp_path / "notes.txt").write_text("mine")
    build.start({}, {})
    assert not stale.exists()
    assert (tmp_path / "notes.txt").exists()  # files tvmx did not make are left alone
