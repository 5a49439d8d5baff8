"""A Gemmini target with only the output-stationary dataflow (tests/data/targets/gemmini-os.yaml):
int8 models compile with the same layers on the array as on the WS target (gemmini), every
kernel's default tiling is OS, and the outputs are bit-exact with onnxruntime's QDQ graph and
identical to the WS target's."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from tvmx import samples
from tvmx.accelerators.gemmini_tiling import FLOW_OS
from tvmx.options import make_options
from tvmx.quantize import quantize_model
from tvmx.target import load_target
from tvmx.verify.flow import verify_model

pytestmark = [pytest.mark.toolchain, pytest.mark.spike, pytest.mark.slow]

OS_TARGET = Path(__file__).resolve().parents[2] / "data" / "targets" / "gemmini-os.yaml"
MODELS = {"mlp": lambda: samples.mlp(softmax=False), "cnn": lambda: samples.cnn(softmax=False),
          "dwsep": lambda: samples.dwsep(softmax=False)}


def dataflows(build_dir: Path) -> set[int]:
    """The dataflow field of every accelerator kernel's tiling in schedules.json (matmul or conv)."""
    schedules = json.loads((build_dir / "03-tune" / "schedules.json").read_text())
    flows = set()
    for record in schedules["accelerator_kernels"].values():
        tiling = record.get("tiling", {})
        flows |= {v for k, v in tiling.items() if k in ("dataflow", "mm_dataflow") and v}
    return flows


def placement(build_dir: Path) -> dict[str, str]:
    offload = json.loads((build_dir / "02-relax" / "offload.json").read_text())
    return {node["node"]: node["where"] for node in offload["nodes"]}


@pytest.mark.parametrize("name", list(MODELS))
def test_os_only_target_is_bit_exact(tmp_path: Path, name: str) -> None:
    onnx.save(MODELS[name](), str(tmp_path / "m.onnx"))
    model = tmp_path / "m.int8.onnx"
    quantize_model(tmp_path / "m.onnx", model, load_target("gemmini"), random_n=8, seed=1)
    os_run = verify_model(model, load_target(str(OS_TARGET)), make_options(), tmp_path / "os", seed=4)
    assert os_run.comparison.ok and all(d.max_lsb == 0 for d in os_run.comparison.outputs), \
        os_run.comparison.summary()
    assert dataflows(os_run.build_dir) == {FLOW_OS}
    assert os_run.stats["macs"] > 0
    ws_run = verify_model(model, load_target("gemmini"), make_options(), tmp_path / "ws", seed=4)
    for key, out in os_run.outputs.items():
        assert np.array_equal(out, ws_run.outputs[key]), key
    placed = [placement(run.build_dir) for run in (os_run, ws_run)]
    assert placed[0] == placed[1] and "accelerator" in placed[0].values()  # the same layers on the array
