"""Compile time of tvmx (ONNX -> bare-metal ELF) next to plain TVM (`from_onnx` + `relax.build` for
the host's LLVM) on the same model, measured side by side in one run, with the no-op recompile
(an unchanged build compiled again: in-process, and as the `tvmx compile` command make runs) and the
model's instret on Spike.

    python benchmarks/compile_time.py [--models cnn,squeezenet,resnet50] [--repeat 2] [--no-run]

Both sides first build a small model once, so neither pays Python's first imports of TVM's passes
inside a measured build. With --repeat N each figure is the fastest of N (a shared machine's noise
only ever adds time).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import onnx

from tvmx import samples
from tvmx.options import make_options
from tvmx.pipeline import compile_model
from tvmx.run.runner import load_inputs, run_build
from tvmx.target import load_target
from tvmx.target.model import Target
from tvmx.toolchain.command import Command, Executor


def plain_tvm_host_build(model_path: Path) -> float:
    """What a TVM user gets without tvmx: import, then relax.build for the host CPU (LLVM)."""
    import tvm
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    t0 = time.perf_counter()
    mod = from_onnx(onnx.load(str(model_path)), keep_params_in_input=False)
    relax.build(mod, target=tvm.target.Target({"kind": "llvm"}))
    return time.perf_counter() - t0


def tvmx_build(model_path: Path, target: Target, build_dir: Path) -> float:
    """A full compile to model.elf (every stage runs, whatever the folder holds)."""
    return compile_model(model_path, target, make_options(), build_dir).seconds


def noop_in_process(model_path: Path, target: Target, build_dir: Path) -> float:
    t0 = time.perf_counter()
    result = compile_model(model_path, target, make_options(), build_dir, reuse=True)
    seconds = time.perf_counter() - t0
    assert result.reused, f"{build_dir}: an unchanged build was compiled again"
    return seconds


def noop_command(model_path: Path, target: Target, build_dir: Path) -> float:
    """`tvmx compile` of the unchanged build, as make would run it (Python's start and imports included).
    A command that finds tvmx's own files changed since (an edit in a checkout) rebuilds: then the
    next one is timed."""
    argv = (sys.executable, "-m", "tvmx", "compile", str(model_path), "--target", str(target.path),
            "-o", str(build_dir))
    for _ in range(3):
        t0 = time.perf_counter()
        out = Executor().run(Command(argv, description="no-op recompile")).stdout
        seconds = time.perf_counter() - t0
        if "up to date" in out:
            return seconds
    raise SystemExit(f"{build_dir}: `tvmx compile` rebuilt an unchanged build three times:\n{out}")


def best_of(repeat: int, measure: Callable[..., float], *args: object) -> float:
    return min(measure(*args) for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="cnn,squeezenet,resnet50")
    parser.add_argument("--target", default="rv64gc")
    parser.add_argument("--repeat", type=int, default=1, help="take the fastest of N runs of each figure")
    parser.add_argument("--no-run", action="store_true", help="skip running on Spike")
    args = parser.parse_args()
    target = load_target(args.target)
    rows = []
    with tempfile.TemporaryDirectory(prefix="tvmx-bench-") as tmp:
        warm = Path(tmp) / "warmup.onnx"
        onnx.save(samples.SAMPLES["mlp"](), str(warm))
        plain_tvm_host_build(warm)
        tvmx_build(warm, target, Path(tmp) / "build-warmup")
        for name in args.models.split(","):
            path = Path(tmp) / f"{name}.onnx"
            onnx.save(samples.SAMPLES[name](), str(path))
            build = Path(tmp) / f"build-{name}"
            plain = best_of(args.repeat, plain_tvm_host_build, path)
            ours = best_of(args.repeat, tvmx_build, path, target, build)
            noop = best_of(args.repeat, noop_in_process, path, target, build)
            noop_cli = best_of(args.repeat, noop_command, path, target, build)
            instret = "-"
            if not args.no_run:
                io = json.loads((build / "io.json").read_text())
                run = run_build(target, build, load_inputs(io, None, 0), None)
                instret = f"{run.stats['instret']:,}"
            size_mb = path.stat().st_size / 1e6
            rows.append((name, size_mb, ours, plain, ours / plain, noop, noop_cli, instret))
            print(f"{name}: tvmx {ours:.2f} s, plain TVM host build {plain:.2f} s ({ours / plain:.2f}x), "
                  f"no-op recompile {noop:.2f} s in-process / {noop_cli:.2f} s as a command, instret {instret}",
                  flush=True)
    instret_head = f"instret ({args.target})"
    print(f"\n{'model':<12} {'ONNX MB':>8} {'tvmx s':>8} {'TVM host s':>11} {'ratio':>6} {'no-op s':>8} "
          f"{'no-op cmd s':>12} {instret_head:>22}")
    for name, mb, ours, plain, ratio, noop, noop_cli, instret in rows:
        print(f"{name:<12} {mb:8.1f} {ours:8.2f} {plain:11.2f} {ratio:6.2f} {noop:8.2f} {noop_cli:12.2f} {instret:>22}")


if __name__ == "__main__":
    main()
