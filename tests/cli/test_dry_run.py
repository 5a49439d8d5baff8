"""`tvmx compile --dry-run` on a cold cache: prints the commands, builds nothing in the build folder,
and never fails for the cache artifacts the compile itself needs (the Gemmini tiling probe)."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from click.testing import CliRunner

from tvmx import samples
from tvmx.cli import cli
from tvmx.quantize import quantize_model
from tvmx.target import load_target


@pytest.mark.toolchain
@pytest.mark.parametrize("target_name", ["gemmini", "gemmini-8"])
def test_gemmini_dry_run_with_a_cold_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           target_name: str) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    model = tmp_path / "mlp.onnx"
    onnx.save(samples.mlp(softmax=False), str(model))
    quantize_model(model, tmp_path / "mlp.int8.onnx", load_target(target_name), random_n=2)
    build = tmp_path / "b"
    result = CliRunner().invoke(cli, ["compile", str(tmp_path / "mlp.int8.onnx"), "-t", target_name, "-o", str(build),
                                      "--dry-run"])
    assert result.exit_code == 0, result.output
    assert "-march=rv64gc" in result.stdout and "accel_glue.c" in result.stdout
    assert "needed now, so run for real" in result.stdout, "the tiling probe's build is announced"
    assert not (build / "model.elf").exists() and not (build / "06-assemble" / "model.elf").exists()
    assert [p.name for p in (cache / "tvmx").iterdir()] == ["gemmini-tiling"], "only the probe, no Spike model"
    assert list((cache / "tvmx" / "gemmini-tiling").rglob("libtiling.so"))
