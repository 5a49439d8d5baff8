from __future__ import annotations

import errno
import os
import tempfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from tvmx import samples
from tvmx.errors import InputError
from tvmx.quantize import check_per_channel, quantize_model
from tvmx.target import load_target
from tvmx.target.loader import read_target_data


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


def _simulate_other_filesystem(monkeypatch: pytest.MonkeyPatch) -> None:
    """os.replace as it behaves across filesystems: EXDEV whenever the two paths are in different folders."""
    real = os.replace

    def replace(src: object, dst: object) -> None:
        if Path(str(src)).resolve().parent != Path(str(dst)).resolve().parent:
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "replace", replace)


def test_output_is_renamed_from_its_own_folder(mlp_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _simulate_other_filesystem(monkeypatch)
    out = tmp_path / "out" / "mlp.int8.onnx"
    info = quantize_model(mlp_path, out, None, random_n=2)
    assert info["quantize_nodes"] > 0 and onnx.load(str(out)).graph.node
    assert [p.name for p in out.parent.iterdir()] == ["mlp.int8.onnx"], "no temporary file left next to it"
    assert out.stat().st_mode & 0o777 == 0o644


def test_temp_dir_on_another_real_filesystem(mlp_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shm = Path("/dev/shm")
    if not shm.is_dir() or not os.access(shm, os.W_OK) or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("no writable second filesystem (/dev/shm) on this machine")
    monkeypatch.setattr(tempfile, "tempdir", str(shm))
    out = tmp_path / "mlp.int8.onnx"
    quantize_model(mlp_path, out, None, random_n=2)
    assert out.is_file()


def test_failed_quantization_leaves_no_temporary(mlp_path: Path, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import tvmx.quantize as q

    def broken(*_a: object, **_k: object) -> None:
        raise RuntimeError("quantizer failed")

    monkeypatch.setattr(q, "quantize_static", broken)
    with pytest.raises(RuntimeError):
        quantize_model(mlp_path, tmp_path / "q.onnx", None, random_n=2)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["gemmini", "gemmini-8"])
def test_per_channel_needs_a_cpu_target(name: str) -> None:
    """The rule reads only validated keys: the target's accelerator section, not an unschema'd one."""
    with pytest.raises(InputError, match="per-channel"):
        check_per_channel(load_target(name), True)
    assert check_per_channel(load_target("rv64gc"), True) is True
    assert check_per_channel(None, True) is True
    assert check_per_channel(load_target(name), None) is False


def test_schema_rejects_a_quantization_section(tmp_path: Path) -> None:
    """Why quantize cannot read accelerator.quantization: no valid target can carry one."""
    text = load_target("gemmini").path.read_text().replace(
        "  kind: gemmini\n", "  kind: gemmini\n  quantization: {per_channel_weights: true}\n", 1)
    path = tmp_path / "gemmini.yaml"
    path.write_text(text)
    (tmp_path / "gemmini").symlink_to(load_target("gemmini").path.parent / "gemmini")
    with pytest.raises(InputError, match=r"\$\.accelerator\.quantization: unknown key"):
        read_target_data(path)
