"""Quantize, compile for Gemmini (and for the plain CPU), run on Spike, compare with onnxruntime
running the same QDQ model: int8 outputs bit-exact, or within 1 LSB on at most 0.1% of elements."""

from __future__ import annotations

import json
from pathlib import Path

import onnx
import pytest

from tvmx import samples
from tvmx.options import make_options
from tvmx.quantize import quantize_model
from tvmx.target import load_target
from tvmx.verify.flow import verify_model

pytestmark = [pytest.mark.toolchain, pytest.mark.spike, pytest.mark.slow]

BUILDERS = {
    "mlp": lambda: samples.mlp(softmax=False),
    "cnn": lambda: samples.cnn(softmax=False),
    "dwsep": lambda: samples.dwsep(softmax=False),
    "squeezenet": lambda: samples.materialize_light("squeezenet", image=64),
    "cnn_ort": lambda: samples.cnn(softmax=False),  # quantize_static without pre-processing: QDQ BatchNorms
    "attention": samples.attention,
}
AS_IS = {"cnn_ort"}  # quantized without onnxruntime's pre-processing (which folds BatchNorm into Conv)


@pytest.fixture(scope="session")
def qdq_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("qdq-models")
    out = {}
    for name, build in BUILDERS.items():
        src = folder / f"{name}.onnx"
        onnx.save(build(), str(src))
        out[name] = folder / f"{name}.int8.onnx"
        quantize_model(src, out[name], load_target("gemmini"), random_n=8, seed=1, pre_process=name not in AS_IS)
    return out


@pytest.mark.parametrize("target_name", ["gemmini", "gemmini-8"])
@pytest.mark.parametrize("model_name", list(BUILDERS))
def test_int8_model_on_gemmini(qdq_models: dict[str, Path], tmp_path: Path, target_name: str,
                               model_name: str) -> None:
    report = verify_model(qdq_models[model_name], load_target(target_name), make_options(), tmp_path / "b", seed=5)
    diff = report.comparison.outputs[0]
    assert diff.max_lsb is not None, "the output is a dequantized int8 tensor, compared in LSBs"
    assert report.comparison.ok, report.comparison.summary()
    offload = json.loads((report.build_dir / "02-relax" / "offload.json").read_text())
    assert offload["offloaded"] >= 1
    stats = report.stats
    assert stats["macs"] > 0 and stats["accelerator_commands"] > 0  # the array really did the work
    assert stats["cycles"] >= stats["instret"]
    c_source = (report.build_dir / "05-codegen" / "kernels.c").read_text()
    assert "tvmx_tiled_" in c_source
    if model_name in AS_IS:  # each BatchNorm (and ReLU) after a conv one per-channel lookup, the MaxPool in the mvout
        assert diff.max_lsb == 0, report.comparison.summary()
        assert "channel_lookup" in c_source and "batch_norm" not in c_source
        pools = [n for n in offload["nodes"] if n["op_type"] == "MaxPool"]
        assert pools and all(n["where"] == "accelerator" for n in pools), pools
    if model_name == "attention":  # Q.K^T and P.V on the array too
        assert sum(n["reason"] == "int8 matmul of two activations" and n["where"] == "accelerator"
                   for n in offload["nodes"]) == 2, offload["nodes"]
    schedules = json.loads((report.build_dir / "03-tune" / "schedules.json").read_text())
    accel = [v for k, v in schedules["kernels"].items() if k.startswith("accel_")]
    assert accel and all(v.startswith("tensorized with tvmx_") for v in accel), accel
    for name, record in schedules["accelerator_kernels"].items():  # the tiling the compiler passed
        if record["op"] == "matmul":
            assert all(record["uses"][m] <= record["capacity"][m] for m in record["uses"]), record
        if "tiling" in record:
            t = tuple(record["tiling"].values())
            assert f"{', '.join(f'(int64_t){v}' for v in t)})" in c_source, (name, t)


@pytest.mark.parametrize("model_name", ["mlp", "cnn", "dwsep", "cnn_ort", "attention"])
def test_int8_model_on_the_cpu_is_bit_exact(qdq_models: dict[str, Path], tmp_path: Path, model_name: str) -> None:
    """The CPU path of the same QDQ models (exact float constants, int8 lookup tables): no LSB off."""
    report = verify_model(qdq_models[model_name], load_target("rv64gc"), make_options(), tmp_path / "b", seed=5)
    assert report.comparison.ok and all(d.max_lsb == 0 for d in report.comparison.outputs), \
        report.comparison.summary()


def test_dumps_show_accelerator_kernels_and_header_calls(qdq_models: dict[str, Path]) -> None:
    from tvmx.dump import dump_ir

    target = load_target("gemmini")
    tir = dump_ir(qdq_models["mlp"], target, make_options(), "tir")
    assert "accel_matmul_0" in tir and 'T.call_extern("int32", "tvmx_tiled_matmul"' in tir
    assert "T.match_buffer" in tir  # the tensorized block binds the intrinsic's operands
    c = dump_ir(qdq_models["cnn"], target, make_options(), "c")
    assert "tvmx_tiled_conv_grouped(" in c and "tiled_conv_grouped((size_t)batch" in c
    assert '#include "gemmini.h"' in c
