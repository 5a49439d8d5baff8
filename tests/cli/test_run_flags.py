"""`tvmx run --target T any.elf`: the flags that only mean something for a build folder are refused
for a bare ELF (usage error, exit 2) instead of being silently ignored."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import Result
from helpers import DATA, assert_error, tvmx

from tvmx.errors import ExitCode
from tvmx.target import load_target
from tvmx.toolchain.command import Executor
from tvmx.toolchain.riscv import find_toolchain


def assert_usage_error(result: Result, *fragments: str) -> None:
    assert_error(result, ExitCode.USAGE, *fragments)


@pytest.fixture
def elf(tmp_path: Path) -> Path:
    """The flags are refused before anything runs: the file's content does not matter."""
    path = tmp_path / "any.elf"
    path.write_bytes(b"\x7fELF")
    return path


@pytest.mark.parametrize("flags", [["--inputs", "x.npz"], ["--seed", "0"], ["--seed", "3"], ["--profile"]])
def test_build_folder_flags_are_refused_for_a_bare_elf(elf: Path, flags: list[str]) -> None:
    assert_usage_error(tvmx("run", "--target", "rv64gc", str(elf), *flags), flags[0], "only apply to a build directory",
                       str(elf))


def test_every_refused_flag_is_named(elf: Path) -> None:
    result = tvmx("run", "--target", "rv64gc", str(elf), "--inputs", "x.npz", "--seed", "1", "--profile")
    assert_usage_error(result, "--inputs, --seed, --profile")


def test_missing_target_is_still_the_first_complaint(elf: Path) -> None:
    assert_usage_error(tvmx("run", str(elf), "--profile"), "needs --target")


@pytest.mark.toolchain
@pytest.mark.spike
def test_the_flags_a_bare_elf_takes_still_work(tmp_path: Path) -> None:
    target = load_target("rv64gc")
    tc = find_toolchain(target.cpu, target.toolchain)
    elf = tmp_path / "exit7.elf"
    Executor().run(tc.build_elf([DATA / "exit7.c"], elf, map_file=tmp_path / "x.map"))
    out = tmp_path / "out"
    result = tvmx("run", "--target", "rv64gc", str(elf), "--timeout", "60", "--output-dir", str(out))
    assert result.exit_code == 7, result.output
    assert "hello from the guest" in result.stdout and (out / "stats.json").is_file()
