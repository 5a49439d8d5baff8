"""The runtime's memcpy and memset (tvmx/runtime/string.c), as both compilers build them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from helpers import DATA, tvmx

from tvmx.target import load_target
from tvmx.toolchain.command import Executor
from tvmx.toolchain.riscv import find_toolchain


@pytest.mark.toolchain
@pytest.mark.spike
@pytest.mark.parametrize("cc", [None, "riscv64-unknown-elf-gcc"])
def test_memcpy_and_memset_match_byte_loops_at_every_alignment(tmp_path: Path, cc: str | None) -> None:
    target = load_target("rv64gc")
    spec = target.toolchain if cc is None else dataclasses.replace(target.toolchain, cc=cc, libc="picolibc")
    tc = find_toolchain(target.cpu, spec)
    elf, map_file = tmp_path / "string_ops.elf", tmp_path / "string_ops.map"
    Executor().run(tc.build_elf([DATA / "string_ops.c"], elf, map_file=map_file))
    # the runtime's own functions are linked, not the C library's
    linked = [line for line in map_file.read_text().splitlines() if ".text.memcpy" in line or ".text.memset" in line]
    assert len(linked) == 2 and not any("libc" in line for line in linked), linked
    result = tvmx("run", "--target", "rv64gc", str(elf))
    assert result.exit_code == 0, result.output
    assert "0 cases differ" in result.stdout
