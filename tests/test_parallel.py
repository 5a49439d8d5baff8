"""`make -j`: several tvmx processes at once share the per-user caches (the Spike model, the Gemmini
tiling probe) and the tuning records. On a cold cache, four verifies of different models on the same
target all pass, each cache artifact is built exactly once, nothing half-made is left behind, and
the ELFs are those of serial builds. Two tunes of different models append to one records folder at
once, and every record they wrote is found again (under the right workload) by the next tune."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import onnx
import pytest

from tvmx import samples
from tvmx.options import Options
from tvmx.pipeline import compile_model
from tvmx.quantize import quantize_model
from tvmx.target import load_target

MODELS = {"mlp": lambda: samples.mlp(softmax=False), "cnn": samples.cnn, "dwsep": samples.dwsep,
          "cnn1": lambda: samples.cnn(seed=1)}  # cnn1: the same layers, other weights: another model


def _int8_models(folder: Path, names: list[str]) -> dict[str, Path]:
    target = load_target("gemmini")
    paths = {}
    for name in names:
        onnx.save(MODELS[name](), str(folder / f"{name}.onnx"))
        paths[name] = folder / f"{name}.int8.onnx"
        quantize_model(folder / f"{name}.onnx", paths[name], target, random_n=4, seed=1)
    return paths


def _start(args: list[str], cache: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache)}
    return subprocess.Popen([sys.executable, "-m", "tvmx", *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _finish(procs: dict[str, subprocess.Popen[str]]) -> dict[str, str]:
    outputs = {name: p.communicate(timeout=600)[0] for name, p in procs.items()}
    for name, p in procs.items():
        assert p.returncode == 0, f"{name}: exit {p.returncode}\n{outputs[name]}"
    return outputs


def _commands_ran(build: Path, description: str) -> int:
    return sum(log.read_text().count(f"# {description}") for log in build.rglob("commands.sh"))


@pytest.mark.slow
@pytest.mark.toolchain
@pytest.mark.spike
@pytest.mark.gxx
def test_four_verifies_at_once_on_a_cold_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    models = _int8_models(tmp_path, list(MODELS))
    cache = tmp_path / "cache"
    procs = {name: _start(["verify", str(path), "--target", "gemmini", "-o", str(tmp_path / f"par-{name}"),
                           "--seed", "1"], cache) for name, path in models.items()}
    outputs = _finish(procs)
    for name, out in outputs.items():
        assert ": PASS:" in out, f"{name}:\n{out}"
    builds = [tmp_path / f"par-{name}" for name in models]
    # each cache artifact built by one process only; the others waited for it and used it
    assert sum(_commands_ran(b, "build the Gemmini tiling heuristics for the host") for b in builds) == 1
    assert sum(_commands_ran(b, "build Spike extension gemmini.cc") for b in builds) == 1
    assert len(list(cache.glob("tvmx/spike-ext/*/lib*.so"))) == 1
    assert len(list(cache.glob("tvmx/gemmini-tiling/*/libtiling.so"))) == 1
    leftovers = [p for p in cache.rglob("*") if p.name.endswith((".tmp", ".lock"))]
    assert leftovers == [], leftovers
    # the same bytes as serial builds (with the now-warm cache)
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    target = load_target("gemmini")
    for name, path in models.items():
        serial = compile_model(path, target, Options(), tmp_path / f"serial-{name}")
        assert (serial.build_dir / "model.elf").read_bytes() == (tmp_path / f"par-{name}" / "model.elf").read_bytes()


# One writer process: waits for the go file, then commits one new workload (a vector add of its own
# length) per step, each with its own cycle count, so its records interleave with the other's.
WRITER = """
import sys, time
from pathlib import Path
from tvm import te, s_tir
from tvmx.stages.tune import llvm_target_of
from tvmx.target import load_target
from tvmx.tune.records import Records
root, me, steps, go = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
target = load_target("rv64gc")
records = Records.open(root, target)
while not go.exists():
    time.sleep(0.01)
for i in range(steps):
    a = te.placeholder((1000 * me + i + 1,), name="a")
    func = te.create_prim_func([a, te.compute(a.shape, lambda j: a[j] + 1.0, name="b")])
    sch = s_tir.Schedule(func)
    records.commit(sch.mod, sch.trace, 1000 * me + i, llvm_target_of(target))
    time.sleep(0.005)
"""


def _vector_add(te: Any, n: int) -> Any:
    a = te.placeholder((n,), name="a")
    return te.create_prim_func([a, te.compute(a.shape, lambda j: a[j] + 1.0, name="b")])


def test_two_processes_append_to_one_records_folder_at_once(tmp_path: Path) -> None:
    """MetaSchedule files a record under its workload's line number in database_workload.json: two
    writers that each counted only their own lines would file records under each other's workloads."""
    from tvm import s_tir, te

    from tvmx.tune.records import TUNING_RECORDS, Records

    root, go, steps = tmp_path / "records", tmp_path / "go", 12
    procs = {f"writer {me}": subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(me), str(steps), str(go)],
                                              text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for me in (1, 2)}
    go.touch()
    _finish(procs)
    records = Records.open(root, load_target("rv64gc"))
    assert len((records.folder / TUNING_RECORDS).read_text().splitlines()) == 2 * steps
    for me in (1, 2):
        for i in range(steps):
            mod = s_tir.Schedule(_vector_add(te, 1000 * me + i + 1)).mod
            assert records.cycles_of_func(mod, mod["main"]) == 1000 * me + i, f"writer {me}, step {i}"
