"""Reproducible builds: the same model compiled into two different folders links to the same ELF bytes
(the manifest may record paths and times; the ELF may not)."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from tvmx import samples
from tvmx.options import Options
from tvmx.pipeline import compile_model
from tvmx.quantize import quantize_model
from tvmx.target import load_target
from tvmx.target.data import targets_dir


def _gcc_target(folder: Path) -> Path:
    """rv64gc built by Debian's riscv64-unknown-elf-gcc (with picolibc) instead of clang."""
    text = (targets_dir() / "rv64gc.yaml").read_text().replace("name: rv64gc", "name: rv64gc-gcc")
    path = folder / "rv64gc-gcc.yaml"
    path.write_text(text.replace("toolchain:\n", "toolchain:\n  cc: riscv64-unknown-elf-gcc\n  libc: picolibc\n"))
    return path


@pytest.mark.toolchain
@pytest.mark.parametrize("target_name", ["rv64gc", "gemmini", "gcc"])
def test_two_folders_give_the_same_elf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, target_name: str) -> None:
    target = load_target(str(_gcc_target(tmp_path)) if target_name == "gcc" else target_name)
    model = tmp_path / "mlp.onnx"
    onnx.save(samples.mlp(softmax=False), str(model))
    if target.accelerator is not None:
        quantize_model(model, tmp_path / "mlp.int8.onnx", target, random_n=4)
        model = tmp_path / "mlp.int8.onnx"
    first = tmp_path / "a"
    compile_model(model, target, Options(), first)
    # another folder, deeper, given relative to another working directory
    (tmp_path / "x" / "y").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "x" / "y")
    second = Path("deeper") / "b"
    compile_model(model, target, Options(), second)
    assemble = json.loads((first / "manifest.json").read_text())["stages"][-1]
    assert ("riscv64-unknown-elf-gcc" in assemble["toolchain"]) == (target_name == "gcc")
    a, b = (first / "model.elf").read_bytes(), (second / "model.elf").read_bytes()
    assert a == b, "the build folder's path reached the ELF"
    assert str(tmp_path) not in (first / "05-codegen" / "weights.S").read_text()
    # the disassembly still interleaves the generated C (debug paths are relative to the build folder)
    assert "PROFILED(0," in (second.resolve() / "06-assemble" / "model.dis").read_text()
