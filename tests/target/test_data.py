"""Shipped data (targets, configs, runtime) and the files a target names."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tvmx.errors import InputError
from tvmx.target import data, load_target
from tvmx.target.data import shipped_dir, shipped_files, targets_dir
from tvmx.target.files import referenced_files


def test_shipped_folders_hold_the_builtin_targets_and_configs() -> None:
    assert {"rv64gc.yaml", "gemmini.yaml", "gemmini-8.yaml"} <= {p.name for p in targets_dir().iterdir()}
    assert (shipped_dir("configs") / "default.yaml").is_file()
    names = {p.name for p in shipped_files()}
    assert {"gemmini.h", "gemmini.cc", "default.yaml", "crt0.S"} <= names


def test_a_wheel_layout_is_looked_up_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    wheel = tmp_path / "site-packages" / "tvmx"
    (wheel / "targets").mkdir(parents=True)
    monkeypatch.setattr(data, "_package_root", lambda: wheel)
    data.shipped_dir.cache_clear()
    try:
        assert data.shipped_dir("targets") == (wheel / "targets").resolve()
        with pytest.raises(InputError, match="shipped 'configs' folder is missing"):
            data.shipped_dir("configs")  # no checkout next to a wheel: site-packages has no pyproject.toml
    finally:
        data.shipped_dir.cache_clear()


def test_a_copied_target_finds_the_shipped_header(tmp_path: Path) -> None:
    """A user's copy of gemmini.yaml without the gemmini/ folder still resolves it among the shipped targets."""
    shutil.copy(targets_dir() / "gemmini.yaml", tmp_path / "mine.yaml")
    files = referenced_files(load_target(tmp_path / "mine.yaml"))
    assert files["accelerator.header"] == targets_dir() / "gemmini" / "gemmini.h"


def test_a_cpu_target_names_no_files() -> None:
    assert referenced_files(load_target("rv64gc")) == {}
