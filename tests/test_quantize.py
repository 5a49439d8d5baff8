from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from tvmx import samples
from tvmx.errors import InputError
from tvmx.quantize import quantize_model
from tvmx.target import load_target


@pytest.fixture(scope="module")
def mlp_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("q") / "mlp.onnx"
    onnx.save(samples.mlp(softmax=False), str(path))
    return path


def test_random_calibration_gives_symmetric_int8_qdq(mlp_path: Path, tmp_path: Path) -> None:
    out = tmp_path / "mlp.int8.onnx"
    info = quantize_model(mlp_path, out, load_target("gemmini"), random_n=4)
    assert info["samples"] == 4 and not info["per_channel"] and info["quantize_nodes"] > 0
    model = onnx.load(str(out))
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear"):
            scale, zero = inits[node.input[1]], inits[node.input[2]]
            assert scale.size == 1, "per-tensor scales only"
            assert zero.dtype in (np.int8, np.int32) and not zero.any(), "symmetric: zero points are 0"


def test_calibration_file(mlp_path: Path, tmp_path: Path) -> None:
    np.savez(tmp_path / "calib.npz", x=np.random.default_rng(0).standard_normal((3, 1, 64)).astype(np.float32))
    info = quantize_model(mlp_path, tmp_path / "q.onnx", None, calibration=tmp_path / "calib.npz")
    assert info["samples"] == 3


def test_calibration_file_with_wrong_name(mlp_path: Path, tmp_path: Path) -> None:
    np.savez(tmp_path / "calib.npz", y=np.zeros((1, 64), np.float32))
    with pytest.raises(InputError, match="no array named 'x'"):
        quantize_model(mlp_path, tmp_path / "q.onnx", None, calibration=tmp_path / "calib.npz")


def test_per_channel_refused_where_the_accelerator_cannot(mlp_path: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot apply per-channel weight scales"):
        quantize_model(mlp_path, tmp_path / "q.onnx", load_target("gemmini"), random_n=2, per_channel=True)
    assert not (tmp_path / "q.onnx").exists()
