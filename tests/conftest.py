"""Shared fixtures. Tests that need the cross toolchain or Spike skip with a clear reason where the
tool is truly missing; in CI (CI=true) a missing tool is a failure, never a skip."""

from __future__ import annotations

import os
from pathlib import Path

import onnx
import pytest

from tvmx import samples
from tvmx.errors import TvmxError

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


def pytest_configure(config: pytest.Config) -> None:
    for marker, text in (("toolchain", "needs the RISC-V cross toolchain"),
                         ("spike", "needs the Spike simulator and dtc"),
                         ("slow", "takes more than a few seconds")):
        config.addinivalue_line("markers", f"{marker}: {text}")


def _missing_tools() -> dict[str, str]:
    from tvmx.simulator.spike import require_dtc, spike_binary
    from tvmx.target import load_target
    from tvmx.toolchain.riscv import find_toolchain

    missing = {}
    target = load_target("rv64gc")
    try:
        find_toolchain(target.cpu, target.toolchain)
    except TvmxError as exc:
        missing["toolchain"] = exc.message
    try:
        spike_binary()
        require_dtc()
    except TvmxError as exc:
        missing["spike"] = exc.message
    return missing


MISSING = _missing_tools()


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in ("toolchain", "spike"):
        if item.get_closest_marker(marker) and marker in MISSING:
            reason = f"{marker} missing: {MISSING[marker]}"
            if os.environ.get("CI"):
                pytest.fail(f"{reason} (CI must have every tool: run `make setup`)")
            pytest.skip(reason)


@pytest.fixture(scope="session")
def sample_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sample models written once per session."""
    folder = tmp_path_factory.mktemp("models")
    paths = {}
    for name in ("mlp", "cnn", "dwsep", "squeezenet"):
        paths[name] = folder / f"{name}.onnx"
        onnx.save(samples.SAMPLES[name](), str(paths[name]))
    return paths
