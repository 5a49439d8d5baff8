"""`make bench-tune`: what `tvmx tune` buys on the int8 layers of a ResNet-style CNN, in one run.

Per accelerator layer: default and tuned cycles (each layer alone, as the tuner measures it),
speedup, array utilisation and the layer's roofline bound (max of MACs at DIM^2 per cycle and its
compulsory DMA bytes, inputs plus outputs, at the bus width); the CPU kernels in one line; the
geometric-mean speedup; the whole model compiled with and without the records and run on Spike;
and trials per minute on this machine, local processes and a Dask LocalCluster side by side.
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
from pathlib import Path

import onnx

from tvmx import samples
from tvmx.options import make_options
from tvmx.quantize import quantize_model
from tvmx.target import load_target
from tvmx.target.model import Target
from tvmx.tune.tasks import ACCELERATOR
from tvmx.tune.tuner import TaskState, TuneOptions, TuneReport, tune_model
from tvmx.verify.flow import verify_model

MODELS = {
    "cnn": lambda: samples.cnn(softmax=False),
    "resnet50": lambda: samples.materialize_light("resnet50", image=64),
}


def roofline(state: TaskState, target: Target) -> tuple[int, float]:
    """(MACs, bound in cycles) of an accelerator layer."""
    acc = target.accelerator or {}
    dim, bus = int(acc["dim"]), int(acc["dma"]["bus_bits"]) // 8
    macs = int(state.stats.get("default", {}).get("macs", 0))
    compulsory = sum(a.nbytes for a in state.task.args)
    return macs, max(macs / (dim * dim), compulsory / bus)


def layer_table(report: TuneReport, target: Target) -> list[float]:
    dim = int((target.accelerator or {})["dim"])
    print(f"{'layer':<34} {'calls':>5} {'default':>10} {'tuned':>10} {'speedup':>8} {'util':>6} {'bound':>9} "
          f"{'x bound':>7}")
    speedups = []
    for s in report.tasks:
        if s.task.kind != ACCELERATOR or not s.default_cycles or not s.best_cycles:
            continue
        macs, bound = roofline(s, target)
        util = macs / (dim * dim * s.best_cycles)
        speedups.append(s.default_cycles / s.best_cycles)
        print(f"{s.task.describe():<34} {s.task.calls:>5} {s.default_cycles:>10,} {s.best_cycles:>10,} "
              f"{speedups[-1]:>7.2f}x {util:>6.1%} {bound:>9,.0f} {s.best_cycles / bound:>6.1f}x")
    cpu = [s for s in report.tasks if s.task.kind != ACCELERATOR and s.default_cycles and s.best_cycles]
    d = sum(s.task.calls * (s.default_cycles or 0) for s in cpu)
    t = sum(s.task.calls * (s.best_cycles or 0) for s in cpu)
    print(f"{f'CPU kernels ({len(cpu)})':<34} {'':>5} {d:>10,} {t:>10,} {d / t if t else 0:>7.2f}x")
    return speedups


def geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="cnn")
    parser.add_argument("--target", default="gemmini")
    parser.add_argument("--trials", type=int, default=96)
    parser.add_argument("-j", "--jobs", type=int, default=2)
    parser.add_argument("--cluster-trials", type=int, default=32, help="trials of the LocalCluster run (0: skip)")
    args = parser.parse_args()
    target = load_target(args.target)
    with tempfile.TemporaryDirectory(prefix="tvmx-bench-tune-") as tmp:
        folder = Path(tmp)
        src, model = folder / f"{args.model}.onnx", folder / f"{args.model}.int8.onnx"
        onnx.save(MODELS[args.model](), str(src))
        quantize_model(src, model, target, random_n=8, seed=1)
        report = tune_model(model, target, make_options(), TuneOptions(trials=args.trials, records=folder / "rec",
                                                                       jobs=args.jobs))
        print(f"# tvmx tune {args.model} on {target.name}: {args.trials} trials, -j {args.jobs}")
        speedups = layer_table(report, target)
        whole = report.to_json()["kernel_cycles"]
        print(f"geometric-mean speedup over the {len(speedups)} accelerator layers: {geomean(speedups):.3f}x; "
              f"over all {len(report.tasks)} kernels (calls x cycles): {whole['speedup']:.3f}x")
        default = verify_model(model, target, make_options(records=folder / "none"), folder / "default")
        tuned = verify_model(model, target, make_options(records=folder / "rec"), folder / "tuned")
        d, t = int(default.stats["cycles"]), int(tuned.stats["cycles"])
        applied = json.loads((folder / "tuned" / "03-tune" / "schedules.json").read_text())["source"]
        print(f"whole model on Spike ({applied}): default {d:,} cycles, tuned {t:,} cycles: {d / t:.3f}x "
              f"(verify: default {default.comparison.summary().split(':')[0]}, "
              f"tuned {tuned.comparison.summary().split(':')[0]})")
        local_rate = 60 * report.measured / report.seconds
        line = (f"trials per minute: local -j {args.jobs}: {local_rate:.1f} "
                f"({report.measured} in {report.seconds:.0f} s)")
        if args.cluster_trials:
            from distributed import LocalCluster

            with LocalCluster(n_workers=args.jobs, threads_per_worker=1, processes=True,
                              dashboard_address=None) as cluster:
                remote = tune_model(model, target, make_options(),
                                    TuneOptions(trials=args.cluster_trials, records=folder / "dask",
                                                cluster=cluster.scheduler_address))
            rate = 60 * remote.measured / remote.seconds
            line += (f"; Dask LocalCluster ({args.jobs} workers): {rate:.1f} ({remote.measured} in "
                     f"{remote.seconds:.0f} s)")
        print(line)


if __name__ == "__main__":
    main()
