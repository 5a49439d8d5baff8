"""onnxruntime as the reference implementation."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tvmx.errors import InputError


def run_reference(model: Path, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types from C++
        raise InputError(f"onnxruntime cannot load {model}: {str(exc).splitlines()[0][:300]}",
                         hint="the reference needs a model onnxruntime supports (IR version <= 13)") from exc
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, inputs), strict=True))
