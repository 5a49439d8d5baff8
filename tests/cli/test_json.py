"""--json on compile, run, verify and targets show: one JSON document on stdout and nothing else
(tune's own --json is tested in test_tune_cli.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from helpers import DATA, assert_error, relu_add_model, save, tvmx

from tvmx import ui
from tvmx.errors import ExitCode


def document(result: Any) -> dict[str, Any]:
    """stdout is exactly one JSON document (json.loads refuses anything around it)."""
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert isinstance(doc, dict)
    return doc


def test_targets_show() -> None:
    doc = document(tvmx("targets", "show", "gemmini", "--json"))
    assert doc["name"] == "gemmini" and doc["target"]["accelerator"]["dim"] == 16
    assert Path(doc["path"]).name == "gemmini.yaml"


def test_an_error_prints_no_document() -> None:
    result = tvmx("targets", "show", "no-such-target", "--json")
    assert_error(result, ExitCode.USER_ERROR)
    assert result.stdout == ""


def test_compile_to_a_stage(tmp_path: Path) -> None:
    model = save(relu_add_model([1, 4]), tmp_path / "m.onnx")
    doc = document(tvmx("compile", str(model), "-t", "rv64gc", "-o", str(tmp_path / "b"), "--compile-to", "relax",
                        "--json"))
    assert doc["last_stage"] == "relax" and doc["elf"] is None and doc["target"] == "rv64gc"
    assert Path(doc["build_dir"]) == tmp_path / "b" and doc["reused"] is False


def test_what_a_library_prints_goes_to_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    """Inside --json, prints of Python code and of C code (file descriptor 1) land on stderr."""
    import os

    with ui.stdout_to_stderr():
        print("from python")
        sys.stdout.flush()
        os.write(1, b"from C\n")
    print("after")
    out, err = capfd.readouterr()
    assert out == "after\n" and "from python" in err and "from C" in err


@pytest.mark.toolchain
@pytest.mark.spike
def test_compile_run_verify(tmp_path: Path) -> None:
    model = save(relu_add_model([1, 4]), tmp_path / "m.onnx")
    build = tmp_path / "b"
    compiled = document(tvmx("compile", str(model), "-t", "rv64gc", "-o", str(build), "--json"))
    assert compiled["elf"] == str(build / "model.elf") and compiled["last_stage"] == "assemble"
    again = document(tvmx("compile", str(model), "-t", "rv64gc", "-o", str(build), "--json"))
    assert again["reused"] is True

    np.savez(tmp_path / "in.npz", x=np.array([[-1.0, 2.0, -3.0, 4.0]], np.float32))
    # (the profile is in the document whenever the run writes run/profile.json; --profile prints its table)
    ran = document(tvmx("run", str(build), "--inputs", str(tmp_path / "in.npz"), "--json"))
    y = ran["outputs"]["y"]
    assert y["values"] == [[0.5, 2.5, 0.5, 4.5]] and y["shape"] == [1, 4] and y["dtype"] == "float32"
    np.testing.assert_array_equal(np.load(y["file"]), np.array(y["values"], np.float32))
    assert ran["stats"]["instret"] > 0 and ran["profile"]["total"]["cycles"] == ran["stats"]["cycles"]
    assert {k["name"] for k in ran["profile"]["kernels"]} <= set(json.loads((build / "io.json").read_text())
                                                                   ["profile"]["calls"])

    verified = document(tvmx("verify", str(model), "-t", "rv64gc", "-o", str(build), "--json"))
    assert verified["ok"] is True and verified["models"][0]["ok"] is True
    assert verified["models"][0]["stats"]["cycles"] > 0 and verified["models"][0]["error"] is None


@pytest.mark.toolchain
@pytest.mark.spike
def test_run_a_bare_elf(tmp_path: Path) -> None:
    from tvmx.target import load_target
    from tvmx.toolchain.command import Executor
    from tvmx.toolchain.riscv import find_toolchain

    target = load_target("rv64gc")
    tc = find_toolchain(target.cpu, target.toolchain)
    elf = tmp_path / "exit7.elf"
    Executor().run(tc.build_elf([DATA / "exit7.c"], elf, map_file=tmp_path / "exit7.map"))
    result = tvmx("run", "--target", "rv64gc", str(elf), "--json")
    assert result.exit_code == 7  # the guest's code, as without --json
    doc = json.loads(result.stdout)
    assert doc["exit_code"] == 7 and doc["target"] == "rv64gc" and "instret" in doc["stats"]
