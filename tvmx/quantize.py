"""`tvmx quantize`: float ONNX -> QDQ int8 ONNX through onnxruntime's static quantizer, with the
settings a target can execute: int8 activations and weights, symmetric scales (zero points 0),
per-channel weight scales only where the target supports them."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from tvmx.errors import InputError
from tvmx.quantize_adds import count_exact, exact_add_scales, quant_overrides, with_scales
from tvmx.quantize_concats import shared_concat_scales
from tvmx.stages.import_onnx import graph_inputs, load_onnx
from tvmx.target.model import Target


def check_per_channel(target: Target | None, per_channel: bool | None) -> bool:
    """Per-channel weight scales: CPU code applies any scales; the accelerators tvmx drives offload
    per-tensor symmetric scales only (the target schema has no key to say otherwise)."""
    if per_channel and target is not None and target.accelerator is not None:
        raise InputError(f"target '{target.name}' cannot apply per-channel weight scales on its "
                         f"{target.accelerator['kind']} accelerator",
                         hint="drop --per-channel; per-tensor scales are what this accelerator executes")
    return bool(per_channel)


def calibration_batches(model: onnx.ModelProto, calibration: Path | None, random_n: int | None,
                        seed: int) -> list[dict[str, np.ndarray]]:
    specs = graph_inputs(model, {})
    if calibration is not None:
        try:
            data = np.load(calibration)
        except (OSError, ValueError) as exc:
            raise InputError(f"cannot read calibration data {calibration}: {exc}",
                             hint="save it with numpy.savez(name=array, ...)") from exc
        batches: list[dict[str, np.ndarray]] = []
        for spec in specs:
            if spec.name not in data:
                raise InputError(f"{calibration}: no array named '{spec.name}'",
                                 hint=f"the model's inputs are: {', '.join(s.name for s in specs)}")
            arr = np.asarray(data[spec.name], dtype=spec.dtype)
            if arr.shape == spec.shape:
                arr = arr[None]
            if arr.shape[1:] != spec.shape:
                raise InputError(f"{calibration}: '{spec.name}' has shape {list(arr.shape)}; expected "
                                 f"{list(spec.shape)} or [N, {', '.join(map(str, spec.shape))}]")
            for i, sample in enumerate(arr):
                if i == len(batches):
                    batches.append({})
                batches[i][spec.name] = sample
        return batches
    rng = np.random.default_rng(seed)
    return [{s.name: rng.standard_normal(s.shape).astype(s.dtype) for s in specs} for _ in range(random_n or 16)]


class _Reader(CalibrationDataReader):  # type: ignore[misc]
    """Feeds the calibration samples to onnxruntime."""

    def __init__(self, batches: list[dict[str, np.ndarray]]) -> None:
        self._it: Iterator[dict[str, np.ndarray]] = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def quantize_model(src: Path, dst: Path, target: Target | None, *, calibration: Path | None = None,
                   random_n: int | None = None, seed: int = 0, per_channel: bool | None = None,
                   pre_process: bool = True) -> dict[str, Any]:
    """`pre_process=False` quantizes the model as it is, as a user calling quantize_static alone does
    (BatchNormalization then stays its own QDQ op). Where the target's accelerator adds int8 tensors,
    a second pass moves the adds' scales to values at which it matches the QDQ graph bit for bit; and
    every Concat gets one scale for its inputs and output (quantize_concats), so it only moves bytes."""
    model = load_onnx(src)
    batches = calibration_batches(model, calibration, random_n, seed)
    channelwise = check_per_channel(target, per_channel)
    arities = _add_arities(target)
    dst.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tvmx-quant-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # Folds BatchNormalization into Conv and infers shapes, as onnxruntime recommends.
        if pre_process:
            quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        else:
            prepared = src
        # The result goes to a unique name next to `dst` (a rename never crosses filesystems), then into place.
        fd, out = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
        os.close(fd)
        try:
            _quantize(prepared, Path(out), batches, channelwise, {})
            first = onnx.load(out)
            shared, concats = shared_concat_scales(first)
            # The adds' scales are chosen with the shared ones in place (scales equal then move together).
            moved, rescaled = exact_add_scales(with_scales(first, shared), arities)
            if shared or moved:
                _quantize(prepared, Path(out), batches, channelwise, quant_overrides(first, {**shared, **moved}))
            os.chmod(out, 0o644)  # mkstemp's 0600 would make the model private
            os.replace(out, dst)
        finally:
            Path(out).unlink(missing_ok=True)
    quantized = onnx.load(str(dst))
    ops = [n.op_type for n in quantized.graph.node]
    exact, adds = count_exact(quantized, arities)
    return {"samples": len(batches), "per_channel": channelwise, "quantize_nodes": ops.count("QuantizeLinear"),
            "dequantize_nodes": ops.count("DequantizeLinear"), "int8_adds": adds, "exact_adds": exact,
            "rescaled_adds": rescaled, "shared_concats": concats}


def _quantize(src: Path, dst: Path, batches: list[dict[str, np.ndarray]], channelwise: bool,
              overrides: dict[str, list[dict[str, Any]]]) -> None:
    quantize_static(str(src), str(dst), _Reader(batches), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=channelwise,
                    extra_options={"ActivationSymmetric": True, "WeightSymmetric": True,
                                   "TensorQuantOverrides": overrides})


def _add_arities(target: Target | None) -> set[int]:
    """How many int8 tensors the target's accelerator adds at once: its add and add3 intrinsics."""
    ops = {i["op"] for i in target.accelerator.get("intrinsics", [])} if target and target.accelerator else set()
    return {n for op, n in (("add", 2), ("add3", 3)) if op in ops}
