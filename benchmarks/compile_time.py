"""Compile time of tvmx (ONNX -> bare-metal ELF) next to plain TVM's host build of the same model,
measured side by side in one run, plus the model's instret on Spike.

    python benchmarks/compile_time.py [--models resnet50,squeezenet] [--no-run]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import onnx

from tvmx import samples
from tvmx.options import make_options
from tvmx.pipeline import compile_model
from tvmx.run.runner import load_inputs, run_build
from tvmx.target import load_target


def plain_tvm_host_build(model_path: Path) -> float:
    """What a TVM user gets without tvmx: import, then relax.build for the host CPU (LLVM)."""
    import tvm
    from tvm import relax
    from tvm.relax.frontend.onnx import from_onnx

    t0 = time.perf_counter()
    mod = from_onnx(onnx.load(str(model_path)), keep_params_in_input=False)
    relax.build(mod, target=tvm.target.Target({"kind": "llvm"}))
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet50,squeezenet,cnn")
    parser.add_argument("--target", default="rv64gc")
    parser.add_argument("--no-run", action="store_true", help="skip running on Spike")
    args = parser.parse_args()
    target = load_target(args.target)
    rows = []
    with tempfile.TemporaryDirectory(prefix="tvmx-bench-") as tmp:
        for name in args.models.split(","):
            path = Path(tmp) / f"{name}.onnx"
            onnx.save(samples.SAMPLES[name](), str(path))
            plain = plain_tvm_host_build(path)
            result = compile_model(path, target, make_options(), Path(tmp) / f"build-{name}")
            instret = "-"
            if not args.no_run:
                io = json.loads((result.build_dir / "io.json").read_text())
                run = run_build(target, result.build_dir, load_inputs(io, None, 0), None)
                instret = f"{run.stats['instret']:,}"
            size_mb = path.stat().st_size / 1e6
            rows.append((name, size_mb, result.seconds, plain, result.seconds / plain, instret))
            print(f"{name}: tvmx {result.seconds:.2f} s, plain TVM host build {plain:.2f} s, instret {instret}",
                  flush=True)
    instret_head = f"instret ({args.target})"
    print(f"\n{'model':<12} {'ONNX MB':>8} {'tvmx s':>8} {'TVM host s':>11} {'ratio':>6} {instret_head:>22}")
    for name, mb, ours, plain, ratio, instret in rows:
        print(f"{name:<12} {mb:8.1f} {ours:8.2f} {plain:11.2f} {ratio:6.2f} {instret:>22}")


if __name__ == "__main__":
    main()
