"""The test networks, quantized to int8, on Gemmini against the plain RV64GC CPU, in one run:
modelled cycles on each Gemmini size, instret on rv64gc for the same QDQ model, the speedup, the
array utilisation inside the offloaded layers, the end-to-end utilisation (the model's MACs over
DIM^2 x cycles), the share of cycles spent on the CPU and the layout transforms left at run time.

    python benchmarks/gemmini_models.py [--models mlp,cnn,cnn_ort,dwsep,attention,squeezenet,resnet50]
    python benchmarks/gemmini_models.py --models bvlc_alexnet,densenet121,inception_v1,...  # (not by default)

`cnn_ort` is the sample CNN quantized by onnxruntime's quantize_static without its pre-processing
(BatchNormalization stays a QDQ op of its own), as a user who calls it directly gets it.
ResNet-50 runs at its full 224x224, where its utilisation is quoted: with its rv64gc run (21.6 G
instructions) it adds about nine minutes.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import onnx

from tvmx import samples
from tvmx.options import make_options
from tvmx.quantize import quantize_model
from tvmx.stages.import_onnx import graph_macs
from tvmx.target import load_target
from tvmx.verify.flow import verify_model

BUILDERS = {
    "mlp": lambda: samples.mlp(softmax=False),
    "cnn": lambda: samples.cnn(softmax=False),
    "cnn_ort": lambda: samples.cnn(softmax=False),
    "dwsep": lambda: samples.dwsep(softmax=False),
    "attention": samples.attention,
    "squeezenet": lambda: samples.materialize_light("squeezenet", image=64),
    "resnet50": lambda: samples.materialize_light("resnet50"),
    # the other light architectures of the onnx wheel, at the e2e tests' images (--models to run them)
    **{name: (lambda n=name, i=image: samples.materialize_light(n, image=i)) for name, image in (
        ("bvlc_alexnet", 64), ("densenet121", 32), ("inception_v1", 64), ("inception_v2", 64), ("shufflenet", 64),
        ("vgg19", 32), ("zfnet512", 64))},
}
DEFAULT_MODELS = ("mlp", "cnn", "cnn_ort", "dwsep", "attention", "squeezenet", "resnet50")
AS_IS = {"cnn_ort"}  # quantized without onnxruntime's pre-processing


def _lsb(report: Any) -> str:
    """'bit-exact', or the largest difference in LSB and how many elements differ."""
    diffs = report.comparison.outputs
    worst = max(d.max_lsb or 0 for d in diffs)
    differ = sum(d.lsb_elements for d in diffs)
    verdict = "bit-exact" if worst == 0 else f"{worst} LSB on {differ}/{sum(d.total for d in diffs)}"
    return verdict + ("" if report.comparison.ok else " FAIL")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(DEFAULT_MODELS))
    parser.add_argument("--targets", default="gemmini,gemmini-8")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="tvmx-bench-") as tmp:
        for name in args.models.split(","):
            src, qdq = Path(tmp) / f"{name}.onnx", Path(tmp) / f"{name}.int8.onnx"
            model = BUILDERS[name]()
            onnx.save(model, str(src))
            macs = graph_macs(model)
            quantize_model(src, qdq, load_target("gemmini"), random_n=8, seed=1, pre_process=name not in AS_IS)
            cpu = verify_model(qdq, load_target("rv64gc"), make_options(), Path(tmp) / f"{name}-cpu", seed=5)
            for target_name in args.targets.split(","):
                target = load_target(target_name)
                dim = int(target.accelerator["dim"]) if target.accelerator else 1
                rep = verify_model(qdq, target, make_options(), Path(tmp) / f"{name}-{target_name}", seed=5)
                offload = json.loads((rep.build_dir / "02-relax" / "offload.json").read_text())
                s = rep.stats
                rows.append((name, target_name, f"{offload['offloaded']}/{offload['candidates']}",
                             offload["layout_transforms_at_run_time"], cpu.stats["instret"], s["cycles"],
                             cpu.stats["instret"] / s["cycles"], s.get("offloaded_utilisation", 0.0),
                             macs / (dim * dim * s["cycles"]), s.get("cpu_share", 1.0), _lsb(rep)))
                print(f"{name} on {target_name}: {rep.comparison.summary()}", flush=True)
    head = (f"{'model':<11} {'target':<10} {'offload':>7} {'transp':>6} {'rv64gc instret':>15} "
            f"{'gemmini cycles':>15} {'speedup':>8} {'util (offl.)':>12} {'util (e2e)':>10} {'CPU share':>9}"
            "  vs onnxruntime")
    print("\n" + head)
    for name, tgt, off, tr, cpu_i, cyc, sp, util, e2e, share, ok in rows:
        print(f"{name:<11} {tgt:<10} {off:>7} {tr:>6} {cpu_i:>15,} {cyc:>15,} {sp:>7.1f}x {util:>11.1%} "
              f"{e2e:>9.1%} {share:>9.1%}  {ok}")


if __name__ == "__main__":
    main()
