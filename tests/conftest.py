"""Shared fixtures. Tests that need the cross toolchain, Spike or g++ skip with a clear reason where
the tool is truly missing; in CI (CI=true/1/yes) a missing tool is a failure, never a skip."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from toolcheck import MARKERS, missing_tools, skip_or_fail

from tvmx import samples

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"


def pytest_configure(config: pytest.Config) -> None:
    for marker, text in (*MARKERS.items(), ("slow", "takes more than a few seconds")):
        config.addinivalue_line("markers", f"{marker}: {text}")


MISSING = missing_tools()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every Gemmini test that compiles or simulates needs g++ (the Spike model, the tiling probe)."""
    for item in items:
        needs_tools = item.get_closest_marker("toolchain") or item.get_closest_marker("spike")
        if needs_tools and "gemmini" in item.nodeid.lower():
            item.add_marker(pytest.mark.gxx)


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in MARKERS:
        if item.get_closest_marker(marker) and marker in MISSING:
            skip_or_fail(f"{marker} missing: {MISSING[marker]}")


@pytest.fixture(scope="session")
def sample_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sample models written once per session."""
    folder = tmp_path_factory.mktemp("models")
    paths = {}
    for name in ("mlp", "cnn", "dwsep", "squeezenet"):
        paths[name] = folder / f"{name}.onnx"
        onnx.save(samples.SAMPLES[name](), str(paths[name]))
    return paths
