"""`tvmx tune` on the command line: its errors, and --json for scripts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import assert_error, relu_add_model, save, tvmx

from tvmx.errors import ExitCode
from tvmx.tune.records import TUNING_RECORDS


def test_contradictory_and_bad_flags(tmp_path: Path) -> None:
    model = str(save(relu_add_model([1, 4]), tmp_path / "m.onnx"))
    assert_error(tvmx("tune", model, "-t", "rv64gc", "-j", "2", "--cluster", "tcp://127.0.0.1:1"),
                    ExitCode.USAGE, "not both")
    assert_error(tvmx("tune", model, "-t", "rv64gc", "--trials", "0"), ExitCode.USAGE, "--trials")
    assert_error(tvmx("tune", str(tmp_path / "none.onnx"), "-t", "rv64gc"), ExitCode.USER_ERROR,
                    "model file not found")
    assert_error(tvmx("tune", model, "-t", "rv64gc", "--only", "nothing*", "--records", str(tmp_path / "r")),
                    ExitCode.USER_ERROR, "matches no kernel")


def test_a_corrupt_records_file_is_one_clear_error(tmp_path: Path) -> None:
    from tvmx.target import load_target
    from tvmx.tune.records import records_folder

    model = str(save(relu_add_model([1, 4]), tmp_path / "m.onnx"))
    folder = records_folder(tmp_path / "r", load_target("rv64gc"))
    folder.mkdir(parents=True)
    (folder / TUNING_RECORDS).write_text("[0, [1, 2]]\n{oops\n")
    assert_error(tvmx("tune", model, "-t", "rv64gc", "--records", str(tmp_path / "r")), ExitCode.USER_ERROR,
                    "line 2 is not a MetaSchedule record")
    assert_error(tvmx("compile", model, "-t", "rv64gc", "--records", str(tmp_path / "r"), "-o",
                         str(tmp_path / "b")), ExitCode.USER_ERROR, "line 2 is not a MetaSchedule record")


@pytest.mark.toolchain
@pytest.mark.spike
def test_json_prints_one_document_on_stdout(tmp_path: Path) -> None:
    model = str(save(relu_add_model([1, 4]), tmp_path / "m.onnx"))
    result = tvmx("tune", model, "-t", "rv64gc", "--trials", "3", "--records", str(tmp_path / "r"), "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["measured"] >= 1 and doc["tasks"] and doc["kernel_cycles"]["default"] > 0
    assert all(t["default_cycles"] for t in doc["tasks"])
