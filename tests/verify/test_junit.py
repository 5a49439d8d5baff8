"""`tvmx verify --junit FILE`: JUnit XML a CI system reads, parsed back here."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import onnx
import pytest
from helpers import assert_error, tvmx

from tvmx import samples
from tvmx.errors import ExitCode
from tvmx.verify.compare import compare
from tvmx.verify.junit import ModelResult, junit_xml


def _suite(data: bytes) -> ET.Element:
    root = ET.fromstring(data)
    assert root.tag == "testsuites"
    suites = root.findall("testsuite")
    assert len(suites) == 1, "one verify call, one suite"
    return suites[0]


def test_cases_per_output_with_failures_and_errors() -> None:
    ref = {"y": np.array([1.0, 2.0, 3.0], np.float32), "z": np.array([0.5], np.float32)}
    good = compare(dict(ref), ref, rtol=1e-4, atol=1e-5)
    bad = compare({"y": np.array([1.0, 2.5, 3.0], np.float32), "z": ref["z"]}, ref, rtol=1e-4, atol=1e-5)
    suite = _suite(junit_xml([ModelResult("a", "rv64gc", 2.0, good), ModelResult("b", "rv64gc", 1.0, bad),
                              ModelResult("c", "rv64gc", 0.5, error="model file not found: c.onnx",
                                          error_type="InputError")]))
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("5", "1", "1")
    cases = {(c.get("classname"), c.get("name")): c for c in suite.findall("testcase")}
    assert list(cases) == [("a.rv64gc", "y"), ("a.rv64gc", "z"), ("b.rv64gc", "y"), ("b.rv64gc", "z"),
                           ("c.rv64gc", "verify")]
    assert float(cases["a.rv64gc", "y"].get("time") or 0) == pytest.approx(1.0)  # the model's time, shared
    assert cases["a.rv64gc", "y"].find("failure") is None and cases["b.rv64gc", "z"].find("failure") is None
    failure = cases["b.rv64gc", "y"].find("failure")
    assert failure is not None
    message = failure.get("message") or ""
    assert "1 of 3 elements mismatched" in message and "max abs err 0.5" in message and "rtol=0.0001" in message
    error = cases["c.rv64gc", "verify"].find("error")
    assert error is not None and error.get("type") == "InputError" and "not found" in (error.get("message") or "")


def test_int8_failure_names_the_quantization_steps() -> None:
    ref = {"y": np.zeros(100, np.float32)}
    got = {"y": np.where(np.arange(100) < 5, 0.1, 0.0).astype(np.float32)}  # 2 LSB on 5 elements
    bad = compare(got, ref, 0.0, 0.0, lsb_scales={"y": 0.05}, max_lsb=1, max_lsb_fraction=0.01)
    failure = _suite(junit_xml([ModelResult("q", "gemmini", 1.0, bad)])).find("testcase/failure")
    assert failure is not None
    assert "max 2 LSB, 5 elements differ (allowed: 1 LSB on 1.0%)" in (failure.get("message") or "")


@pytest.mark.toolchain
@pytest.mark.spike
def test_verify_several_models_one_suite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # several models build into their default folders, under build/
    for name in ("mlp", "cnn"):
        onnx.save(samples.SAMPLES[name](), f"{name}.onnx")
    ok = tvmx("verify", "mlp.onnx", "cnn.onnx", "-t", "rv64gc", "--junit", "out/ok.xml")
    assert ok.exit_code == 0, ok.output
    assert len([ln for ln in ok.stdout.splitlines() if ln.startswith("tvmx: verify")]) == 2
    suite = _suite(Path("out/ok.xml").read_bytes())
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "0", "0")
    assert [c.get("classname") for c in suite.findall("testcase")] == ["mlp.rv64gc", "cnn.rv64gc"]
    assert Path("build/mlp-rv64gc/model.elf").is_file() and Path("build/cnn-rv64gc/model.elf").is_file()
    # zero tolerance fails the float model (sums in another order); a missing model is an error case,
    # and the models after it are still verified
    strict = tvmx("verify", "missing.onnx", "mlp.onnx", "-t", "rv64gc", "--rtol", "0", "--atol", "0",
                  "--junit", "out/strict.xml")
    assert_error(strict, ExitCode.USER_ERROR, "model file not found")
    suite = _suite(Path("out/strict.xml").read_bytes())
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("2", "1", "1")
    failure = suite.find("testcase[@classname='mlp.rv64gc']/failure")
    assert failure is not None and "elements mismatched" in (failure.get("message") or "")
    assert "FAIL" in strict.stdout


def test_one_folder_for_several_models_is_a_usage_error(tmp_path: Path) -> None:
    result = tvmx("verify", "a.onnx", "b.onnx", "-t", "rv64gc", "-o", str(tmp_path / "b"))
    assert_error(result, ExitCode.USAGE, "-o/--output")
