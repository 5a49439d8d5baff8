"""ONNX -> ELF -> Spike -> compared with onnxruntime, for every CPU target and test architecture."""

from __future__ import annotations

from pathlib import Path

import pytest

from tvmx.options import make_options
from tvmx.target import load_target
from tvmx.verify.flow import verify_model

pytestmark = [pytest.mark.toolchain, pytest.mark.spike, pytest.mark.slow]

MODELS = ["mlp", "cnn", "dwsep", "squeezenet"]


@pytest.mark.parametrize("target_name", ["rv64gc", "rv64gcv"])
@pytest.mark.parametrize("model_name", MODELS)
def test_matches_onnxruntime(sample_models: dict[str, Path], tmp_path: Path, target_name: str,
                             model_name: str) -> None:
    target = load_target(target_name)
    report = verify_model(sample_models[model_name], target, make_options(), tmp_path / "build", seed=3)
    assert report.comparison.ok, report.comparison.summary()
    assert report.comparison.rtol == pytest.approx(1e-4)
    for name, ref in report.reference.items():
        assert report.outputs[name].shape == ref.shape and report.outputs[name].dtype == ref.dtype
    assert report.stats["instret"] > 0 and report.stats["cycles"] == report.stats["instret"]
    disassembly = (report.build_dir / "06-assemble" / "model.dis").read_text()
    if target.cpu.vector:
        assert "\tvset" in disassembly  # vsetvli or vsetivli: the kernels really use RVV
    else:
        assert "\tvset" not in disassembly


def test_reuses_an_up_to_date_build(sample_models: dict[str, Path], tmp_path: Path) -> None:
    target = load_target("rv64gc")
    first = verify_model(sample_models["mlp"], target, make_options(), tmp_path / "b", seed=1)
    again = verify_model(sample_models["mlp"], target, make_options(), tmp_path / "b", seed=1)
    assert not first.reused and again.reused
    assert again.comparison.ok
