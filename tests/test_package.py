"""tvmx as a real package: the wheel carries the targets, configs, Gemmini header and Spike model and
the runtime, found through importlib.resources; a non-editable install compiles and runs on Gemmini
from a folder outside the checkout."""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import numpy as np
import onnx
import pytest

from tvmx import samples
from tvmx.options import Options
from tvmx.pipeline import compile_model
from tvmx.target import load_target
from tvmx.target.data import configs_dir, runtime_dir, targets_dir

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]
SOURCES = ("pyproject.toml", "README.md", "tvmx", "targets", "configs")


def _source_dir(package: str) -> Path:
    """Where setuptools takes `package` from, by the package-dir mapping."""
    mapping = SETUPTOOLS.get("package-dir", {})
    parts = package.split(".")
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in mapping:
            return REPO / mapping[".".join(parts[:n])] / Path(*parts[n:])
    return REPO / Path(*parts)


def test_the_checkout_finds_its_shipped_data() -> None:
    assert targets_dir() == REPO / "targets" and configs_dir() == REPO / "configs"
    assert runtime_dir() == REPO / "tvmx" / "runtime"


def test_every_package_is_listed() -> None:
    """packages is an explicit list (mapped folders cannot be discovered): a new one must be added."""
    listed = set(SETUPTOOLS["packages"])
    code = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "tvmx").rglob("*.py")
            if "__pycache__" not in p.parts}
    assert code <= listed, f"add to pyproject.toml [tool.setuptools] packages: {sorted(code - listed)}"
    for folder, package in ((REPO / "targets", "tvmx.targets"), (REPO / "configs", "tvmx.configs")):
        subs = {".".join((package, *d.relative_to(folder).parts)) for d in folder.rglob("*") if d.is_dir()}
        assert {package, *subs} <= listed, sorted({package, *subs} - listed)
    assert all(_source_dir(p).is_dir() for p in listed), "a listed package has no folder"


def test_every_shipped_file_matches_the_package_data() -> None:
    data = SETUPTOOLS["package-data"]
    for package in SETUPTOOLS["packages"]:
        folder = _source_dir(package)
        if package not in ("tvmx.runtime",) and not package.startswith(("tvmx.targets", "tvmx.configs")):
            continue
        for path in (p for p in folder.iterdir() if p.is_file()):
            assert any(fnmatch.fnmatch(path.name, glob) for glob in data.get(package, [])), \
                f"{path} would not ship: add a pattern to package-data for {package}"


def _run(argv: list[str | Path], cwd: Path | None = None, env: dict[str, str] | None = None,
         ok: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([str(a) for a in argv], cwd=cwd, env=env, capture_output=True, text=True, timeout=900)
    if ok:
        assert proc.returncode == 0, f"{argv} exited {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the wheel built from a copy of the checkout (nothing from the checkout
    on its path); the dependencies come from the test's own environment through a .pth file."""
    work = tmp_path_factory.mktemp("wheel")
    src = work / "src"
    src.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy(REPO / name, src / name)
    # With build isolation: pyproject's build requirement (setuptools>=68, which builds wheels by itself).
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", src, "-w", work / "dist"])
    wheel = next((work / "dist").glob("tvmx-*.whl"))
    venv = work / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv])
    _run([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install", "-q", "--no-deps", wheel])
    site = Path(_run([venv / "bin" / "python", "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"])
                .stdout.strip())
    (site / "tvmx-test-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return venv


@pytest.mark.slow
@pytest.mark.toolchain
@pytest.mark.spike
@pytest.mark.gxx
def test_the_wheel_compiles_and_runs_on_gemmini(installed: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TVMX_TARGETS_PATH")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "cache")  # cold: the Spike model is built from the wheel's source
    bin_dir = installed / "bin"
    where = _run([bin_dir / "python", "-c", "import tvmx; print(tvmx.__file__)"], cwd=tmp_path, env=env)
    assert Path(where.stdout.strip()).is_relative_to(installed), "the test must run the installed tvmx"
    listed = _run([bin_dir / "tvmx", "targets", "list"], cwd=tmp_path, env=env).stdout
    assert "gemmini " in listed and str(installed) in listed and str(REPO) not in listed

    onnx.save(samples.mlp(softmax=False), str(tmp_path / "mlp.onnx"))
    tvmx = [bin_dir / "tvmx"]
    _run([*tvmx, "quantize", "mlp.onnx", "-o", "mlp.int8.onnx", "-t", "gemmini", "--random-calibration", "4"],
         cwd=tmp_path, env=env)
    _run([*tvmx, "compile", "mlp.int8.onnx", "--target", "gemmini", "-o", "b"], cwd=tmp_path, env=env)
    build = tmp_path / "b"
    # the checkout's tvmx, with the runtime and header at other paths, links the same bytes
    compile_model(tmp_path / "mlp.int8.onnx", load_target("gemmini"), Options(), tmp_path / "checkout")
    assert (build / "model.elf").read_bytes() == (tmp_path / "checkout" / "model.elf").read_bytes()
    commands = (build / "commands.sh").read_text()
    assert str(REPO) not in commands and str(installed) in commands, "header and runtime from the wheel"
    _run([*tvmx, "run", "b", "--seed", "1"], cwd=tmp_path, env=env)
    outputs = list((build / "run").glob("*.npy"))
    assert outputs and all(np.isfinite(np.load(p)).all() for p in outputs)
    stats = json.loads((build / "run" / "stats.json").read_text())
    assert stats["macs"] > 0 and stats["accelerator_commands"] > 0, "the layers ran on the Gemmini model"
    # and its numbers against onnxruntime, reusing the build
    verify = _run([*tvmx, "verify", "mlp.int8.onnx", "--target", "gemmini", "-o", "b", "--seed", "1"],
                  cwd=tmp_path, env=env)
    assert "PASS" in verify.stdout
