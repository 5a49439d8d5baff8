"""The nine architectures the `onnx` package ships as weightless "light" models, with seeded and
calibrated random weights at a small image: float32 on the CPU targets against onnxruntime (rtol
1e-4), and quantized by `tvmx quantize` on Gemmini, bit-exact against onnxruntime."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from tvmx import samples
from tvmx.options import make_options
from tvmx.quantize import quantize_model
from tvmx.target import load_target
from tvmx.verify.compare import compare
from tvmx.verify.reference import run_reference


def E2E(test: Any) -> Any:
    """Compiled, run on Spike: the markers conftest skips by (or fails in CI) when a tool is missing."""
    return pytest.mark.toolchain(pytest.mark.spike(pytest.mark.slow(test)))

# 64x64, and the smallest image the architecture allows (its five stride-2 stages leave 1x1) where
# 64x64 would take the test budget: VGG-19 retires 6 G instructions at 64x64 on rv64gc, ResNet-50 1.2 G.
IMAGES = {"bvlc_alexnet": 64, "densenet121": 32, "inception_v1": 64, "inception_v2": 64, "resnet50": 32,
          "shufflenet": 64, "squeezenet": 64, "vgg19": 32, "zfnet512": 64}
# DenseNet-121 ends in raw logits (no softmax, std ~1) after 120 layers: onnxruntime's own optimised
# and unoptimised runs of it differ by up to 2.2e-4 at 32x32, so the absolute tolerance follows that.
ATOL = {"densenet121": 5e-4}
VECTOR = list(IMAGES)  # rv64gcv too: the same kernels, vectorised (10-35 s each)


@pytest.fixture(scope="module")
def light_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("light")
    paths = {}
    for name, image in IMAGES.items():
        paths[name] = folder / f"{name}.onnx"
        onnx.save(samples.materialize_light(name, image=image), str(paths[name]))
    return paths


@pytest.fixture(scope="module")
def int8_models(light_models: dict[str, Path]) -> dict[str, Path]:
    """Quantized on first use (a dict the tests fill), so a -k selection quantizes only its own."""
    return {}


def _int8(light_models: dict[str, Path], int8_models: dict[str, Path], name: str) -> Path:
    if name not in int8_models:
        out = light_models[name].with_suffix(".int8.onnx")
        quantize_model(light_models[name], out, load_target("gemmini"), random_n=8, seed=1)
        int8_models[name] = out
    return int8_models[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(IMAGES))
def test_sample_weights_keep_activations_in_range(light_models: dict[str, Path], name: str) -> None:
    """Calibrated weights: a softmax output is spread (not one-hot) on an input the calibration never saw."""
    model = onnx.load(str(light_models[name]))
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    x = np.random.default_rng(99).standard_normal(feed.shape).astype(np.float32)
    y = session.run(None, {feed.name: x})[0].ravel()
    assert np.isfinite(y).all()
    if model.graph.node[-1].op_type == "Softmax":
        assert y.max() < 0.5 and np.count_nonzero(y > 1e-6) > 100, (y.max(), np.count_nonzero(y > 1e-6))
    else:  # raw logits: in a range where fp32 verification means something
        assert 0.1 < y.std() < 10, y.std()


def test_resized_models_have_the_architecture_at_the_new_image() -> None:
    """Resizing rewrites only what depends on the image: the flattening reshape, the global pools
    and the first classifier's inputs (AlexNet: 256x1x1 into fc6 instead of 256x6x6)."""
    small = samples.materialize_light("bvlc_alexnet", image=64)
    full = onnx.load(str(samples.LIGHT_DIR / "light_bvlc_alexnet.onnx"))
    ops = [n.op_type for n in full.graph.node if n.op_type != "ConstantOfShape"]
    assert [n.op_type for n in small.graph.node] == ops
    weights = {t.name: t.dims for t in small.graph.initializer}
    assert list(weights["fc6_w_0"]) == [4096, 256] and list(weights["fc7_w_0"]) == [4096, 4096]
    with pytest.raises(ValueError, match="too small"):
        samples.materialize_light("bvlc_alexnet", image=16)


@pytest.mark.parametrize("name", list(IMAGES))
@pytest.mark.parametrize("target_name", ["rv64gc"])
@E2E
def test_float_model_matches_onnxruntime(light_models: dict[str, Path], tmp_path: Path, target_name: str,
                                         name: str) -> None:
    _check_float(light_models[name], tmp_path, target_name, name)


@pytest.mark.parametrize("name", VECTOR)
@E2E
def test_float_model_matches_onnxruntime_on_rvv(light_models: dict[str, Path], tmp_path: Path, name: str) -> None:
    disassembly = _check_float(light_models[name], tmp_path, "rv64gcv", name)
    assert "\tvset" in disassembly  # the kernels really use RVV


def _check_float(model: Path, tmp_path: Path, target_name: str, name: str) -> str:
    from tvmx.verify.flow import verify_model

    options = make_options(atol=ATOL[name]) if name in ATOL else make_options()
    report = verify_model(model, load_target(target_name), options, tmp_path / "b", seed=3)
    assert report.comparison.ok, report.comparison.summary()
    assert report.comparison.rtol == pytest.approx(1e-4)
    for out, ref in report.reference.items():
        assert report.outputs[out].shape == ref.shape and report.outputs[out].dtype == ref.dtype
    assert report.stats["instret"] > 0
    return (report.build_dir / "06-assemble" / "model.dis").read_text()


# Inception v2: onnxruntime's two runs of the QDQ graph disagree, and tvmx (exact integer convolutions,
# pools in float as the graph says) sits between them, 1-2 LSB from each on 1-3% of the outputs. The
# graph run computes every convolution in float, where a near-tie rounds either way. The int8-kernel
# run leaves in float the 28 convolutions whose input DequantizeLinear feeds several branches, and its
# QLinearAveragePool sums windows row by row and rounds y / scale + 128 on the u8 data it converts to,
# unlike the float pool (columns first). quantize_static's DedicatedQDQPair changes nothing here; a
# Q/DQ pair per consumer fuses all 69 convolutions, but its 8 QLinearAveragePool and QLinearSoftmax
# still leave tvmx 1 LSB from the int8 kernels on 13 of 1000 outputs (12 without), so it is not done.
NOT_EXACT = {"inception_v2": "onnxruntime's float-conv graph run and its int8 kernels (float convs on shared "
                             "inputs, u8 pool rounding) disagree: 1-2 LSB from either"}
# VGG-19's 4608-term float convolutions in the graph reference (and the float requantization of
# onnxruntime's int8 kernels) round near-ties by the host CPU's kernels: exact on one machine, 1 LSB on
# 1 of 1000 outputs (2 against the int8 kernels) on another (AMD EPYC without AVX-512), with the same
# tvmx ELF. There it is held to the target's tolerance (1 LSB on at most 0.1%), not to exactness.
HOST_ROUNDED = {"vgg19"}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.xfail(strict=True, reason=NOT_EXACT[n]))
                                  if n in NOT_EXACT else n for n in IMAGES])
@E2E
def test_int8_model_on_gemmini_is_bit_exact(light_models: dict[str, Path], int8_models: dict[str, Path],
                                            tmp_path: Path, name: str) -> None:
    """Bit-exact against onnxruntime: against its run of the QDQ graph as written (what `tvmx verify`
    checks first), or against its int8 kernels, whose exact integer convolutions the array computes
    too (the float graph rounds a near-tie either way, and a deep network carries a flip to its output)."""
    import json

    from tvmx.run.runner import load_inputs
    from tvmx.verify.flow import verify_model
    from tvmx.verify.reference import quantized_output_scales

    model = _int8(light_models, int8_models, name)
    report = verify_model(model, load_target("gemmini"), make_options(), tmp_path / "b", seed=5)
    stats = report.stats
    assert stats["macs"] > 0 and stats["accelerator_commands"] > 0 and stats["cycles"] >= stats["instret"]
    scales = quantized_output_scales(model)
    assert set(scales) == set(report.outputs), "the outputs are dequantized int8, compared in steps"
    graph_exact = all(d.max_lsb == 0 for d in report.comparison.outputs)
    inputs = load_inputs(json.loads((report.build_dir / "io.json").read_text()), None, 5)
    kernels = compare(report.outputs, run_reference(model, inputs), 1e-4, 1e-5, scales, 0, 0.0)
    kernels_exact = all(d.max_lsb == 0 for d in kernels.outputs)
    if name in HOST_ROUNDED and not (graph_exact or kernels_exact):
        assert report.comparison.ok and all(d.max_lsb <= 1 for d in report.comparison.outputs), \
            report.comparison.summary()
        return
    assert graph_exact or kernels_exact, (report.comparison.summary(), kernels.summary())
