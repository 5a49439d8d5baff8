from __future__ import annotations

from pathlib import Path

import pytest

from tvmx.errors import InputError
from tvmx.target import find_target, list_targets, load_target
from tvmx.target.data import targets_dir
from tvmx.target.model import CpuSpec

DATA = Path(__file__).resolve().parents[1] / "data"


def test_resolves_name_name_with_suffix_and_path() -> None:
    path = targets_dir() / "rv64gc.yaml"
    assert find_target("rv64gc") == path
    assert find_target("rv64gc.yaml") == path
    assert find_target(str(path)) == path


def test_unknown_target_lists_known_ones() -> None:
    with pytest.raises(InputError) as info:
        find_target("nonesuch")
    assert "unknown target 'nonesuch'" in info.value.message
    assert info.value.hint is not None and "rv64gc" in info.value.hint


def test_missing_target_file() -> None:
    with pytest.raises(InputError, match="target file not found"):
        find_target("no/such/target.yaml")


def test_yaml_syntax_error_names_file_and_line() -> None:
    with pytest.raises(InputError) as info:
        load_target(DATA / "bad_syntax.yaml")
    assert info.value.message.startswith(f"{DATA / 'bad_syntax.yaml'}:")
    assert "invalid YAML" in info.value.message


def test_search_path_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = (targets_dir() / "rv64gc.yaml").read_text().replace("name: rv64gc", "name: mine")
    (tmp_path / "mine.yaml").write_text(text)
    monkeypatch.setenv("TVMX_TARGETS_PATH", str(tmp_path))
    assert load_target("mine").name == "mine"
    assert tmp_path / "mine.yaml" in list_targets()


def test_typed_fields() -> None:
    t = load_target("rv64gcv")
    assert t.cpu == CpuSpec("rv64gcv", "lp64d", True)
    assert t.cpu.xlen == 64
    assert "-riscv-v-vector-bits-min=128" in t.toolchain.clang_cflags
    assert t.simulator.isa.startswith("rv64gcv")
    assert t.verify.rtol == pytest.approx(1e-4)
