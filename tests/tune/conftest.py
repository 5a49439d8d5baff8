"""Models for the tuner's tests: small int8 models quantized once per session."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from tvmx import samples
from tvmx.quantize import quantize_model
from tvmx.target import load_target


@pytest.fixture(scope="session")
def int8_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tune-models")
    out = {}
    for name, build in (("mlp", lambda: samples.mlp(softmax=False)), ("cnn", lambda: samples.cnn(softmax=False))):
        src = folder / f"{name}.onnx"
        onnx.save(build(), str(src))
        out[name] = folder / f"{name}.int8.onnx"
        quantize_model(src, out[name], load_target("gemmini"), random_n=8, seed=1)
    return out
