"""The per-kernel profile of `tvmx run --profile`: counts that add up to the whole model, MACs equal to
the ONNX graph's, and no accelerator kernel faster than its roofline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from tvmx import samples
from tvmx.accelerators import ProfileCounters, accelerator_for
from tvmx.options import make_options
from tvmx.pipeline import compile_model
from tvmx.quantize import quantize_model
from tvmx.run.profile import build_profile
from tvmx.run.runner import random_inputs, read_io, run_build
from tvmx.stages.artifacts import ExecutionPlan
from tvmx.stages.codegen import model_c
from tvmx.stages.import_onnx import graph_macs
from tvmx.target import load_target

COUNTERS = ProfileCounters("acc.h", "acc_read({id})", (("cycles", "ACC_CYCLES"), ("macs", "ACC_MACS")), 16)


def test_main_reads_every_counter_around_every_call() -> None:
    plan = ExecutionPlan(storages=[], constants=[], inputs=[], outputs=[], calls=[("k0", []), ("k1", [])],
                         output_refs=[])
    text = model_c(plan, [], COUNTERS)
    assert '#include "acc.h"' in text and "uint64_t tvmx_profile[2][TVMX_PROFILE_COUNTERS]" in text
    assert text.count("acc_read(ACC_CYCLES)") == 2 and text.count("acc_read(ACC_MACS)") == 2  # begin and end
    assert "PROFILED(0, k0());" in text and "PROFILED(1, k1());" in text
    # the generic main names no accelerator: a CPU target reads instret only
    cpu = model_c(plan, [], None)
    assert "acc" not in cpu.replace("tvmx_", "") and "#define TVMX_PROFILE_COUNTERS 1 " in cpu


def test_profile_subtracts_the_measured_overhead_per_call() -> None:
    """Two calls of one kernel on a CPU: each row less the empty window, summed into one row."""
    spec = {"symbol": "p", "calls": ["k", "k", "j"], "counters": ["instret"], "overhead_symbol": "o"}
    dumped = {"p": np.array([106, 206, 16], "<u8").tobytes(), "o": np.array([6, 17], "<u8").tobytes()}
    profile = build_profile("cpu", None, None, spec, lambda sym, n: dumped[sym][:n], {"cycles": 400, "instret": 400},
                            {})
    rows = {r.name: r for r in profile.kernels}
    assert (rows["k"].calls, rows["k"].instret, rows["k"].cycles) == (2, 300, 300)
    assert rows["j"].cycles == 10 and profile.kernels[0].name == "k"
    assert profile.total["kernel_cycles"] == 310 and profile.total["unaccounted"] == 400 - 310 - 4 * 17


def test_gemmini_roofline_is_the_slowest_of_compute_and_each_dma_direction() -> None:
    gemmini = accelerator_for(load_target("gemmini"))  # DIM 16, a 128-bit bus
    assert gemmini is not None and gemmini.profile_counters().peak_macs_per_cycle == 256
    counts = {"instret": 900, "cycles": 1000, "stall": 100, "load_busy": 700, "execute_busy": 400, "store_busy": 50,
              "commands": 40, "macs": 256 * 300, "dma_read": 16 * 500 + 1, "dma_written": 16 * 200}
    figures = gemmini.kernel_figures(counts)
    assert figures["bound_cycles"] == 501  # the reads: 500 bus beats and one byte more
    assert figures["utilisation"] == 0.3 and figures["units"] == {"load": 700, "execute": 400, "store": 50}
    compute_bound = gemmini.kernel_figures({**counts, "macs": 256 * 600})
    assert compute_bound["bound_cycles"] == 600
    on_cpu = gemmini.kernel_figures({**counts, "commands": 0, "macs": 0})
    assert on_cpu["bound_cycles"] is None and on_cpu["utilisation"] is None


# ---------------------------------------------------------------- on Spike

BUILDERS = {"cnn": lambda: samples.cnn(softmax=False), "dwsep": lambda: samples.dwsep(softmax=False)}
CASES = ["cnn-gemmini", "dwsep-gemmini", "cnn-gemmini-8"]  # model-target: both array sizes


@pytest.fixture(scope="module")
def gemmini_profiles(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[onnx.ModelProto, dict, dict]]:
    """The int8 sample CNNs compiled for gemmini and run once: (QDQ model, profile.json, stats)."""
    folder = tmp_path_factory.mktemp("profiled")
    for name, build in BUILDERS.items():
        onnx.save(build(), str(folder / f"{name}.onnx"))
        quantize_model(folder / f"{name}.onnx", folder / f"{name}.int8.onnx", load_target("gemmini"), random_n=4,
                       seed=1)
    out = {}
    for case in CASES:
        name, target_name = case.split("-", 1)
        target = load_target(target_name)
        result = compile_model(folder / f"{name}.int8.onnx", target, make_options(), folder / case)
        run = run_build(target, result.build_dir, random_inputs(read_io(result.build_dir)["inputs"], 0), None)
        profile = json.loads((result.build_dir / "run" / "profile.json").read_text())
        out[case] = (onnx.load(str(folder / f"{name}.int8.onnx")), profile, run.stats)
    return out


def _assert_counts_add_up(profile: dict, stats: dict) -> None:
    total = profile["total"]
    assert total["cycles"] == stats["cycles"] and total["instret"] == stats["instret"]
    assert sum(k["cycles"] for k in profile["kernels"]) == total["kernel_cycles"]
    assert sum(k["calls"] for k in profile["kernels"]) == len(profile["calls"])
    # what lies outside the kernels is the profile's own cost, one measured pair per call and the
    # empty one; the rest is main's entry and exit (its register saves: within one more pair) and
    # the argument moves of each call's pair (a register here, an address there: 2 instructions)
    pair, calls = total["overhead"]["pair_instret"], len(profile["calls"])
    assert 0 < pair < 200
    residual = total["cycles"] - total["kernel_cycles"] - pair * (calls + 1)
    assert residual == total["unaccounted"] and abs(residual) <= pair + 2 * calls, total


@pytest.mark.toolchain
@pytest.mark.spike
@pytest.mark.parametrize("case", CASES)
def test_gemmini_kernels_add_up_to_the_model(gemmini_profiles: dict, case: str) -> None:
    _, profile, stats = gemmini_profiles[case]
    _assert_counts_add_up(profile, stats)
    assert total_share(profile) == pytest.approx(profile["total"]["kernel_cycles"] / stats["cycles"], abs=0.01)
    accel = [k for k in profile["kernels"] if k["where"] == "accelerator"]
    assert accel and sum(k["array_macs"] for k in accel) == stats["macs"]  # every MAC inside some kernel
    for k in accel:
        assert k["units"]["execute"] > 0 or k["macs"] == 0, k
        assert k["cycles"] >= k["instret"], k


def total_share(profile: dict) -> float:
    return float(sum(k["share"] for k in profile["kernels"]))


@pytest.mark.toolchain
@pytest.mark.spike
@pytest.mark.gxx
@pytest.mark.parametrize("case", ["cnn-gemmini", "cnn-gemmini-8"])
def test_int8_cnn_macs_equal_the_onnx_graph(gemmini_profiles: dict, case: str) -> None:
    model, profile, _ = gemmini_profiles[case]
    accel = [k for k in profile["kernels"] if k["where"] == "accelerator"]
    assert sum(k["macs"] for k in accel) == graph_macs(model) == profile["total"]["macs"]
    # the array computes at least that work (its counter also counts MACs on padding)
    assert all(k["array_macs"] >= k["macs"] for k in accel), accel
    assert {n for k in accel for n in k["nodes"]} >= {n.name for n in model.graph.node if n.op_type == "Conv"}


@pytest.mark.toolchain
@pytest.mark.spike
@pytest.mark.gxx
@pytest.mark.parametrize("case", CASES)
def test_no_accelerator_kernel_beats_its_roofline(gemmini_profiles: dict, case: str) -> None:
    """issue #10 item 5: compute at DIM^2 MACs per cycle and DMA at the bus width are limits."""
    _, profile, _ = gemmini_profiles[case]
    accel = [k for k in profile["kernels"] if k["where"] == "accelerator"]
    acc = load_target(case.split("-", 1)[1]).accelerator
    assert acc is not None and profile["accelerator"] == "gemmini"
    dim, bus = int(acc["dim"]), int(acc["dma"]["bus_bits"]) // 8
    for k in accel:
        bound = max(k["array_macs"] / dim**2, k["dma_bytes"]["read"] / bus, k["dma_bytes"]["written"] / bus)
        assert k["bound_cycles"] >= bound > 0, k
        assert k["cycles"] >= k["bound_cycles"], k
        assert k["units"]["execute"] >= k["array_macs"] / dim**2, k  # the array's own busy time, too
        assert 0 <= k["utilisation"] <= 1, k


@pytest.mark.toolchain
@pytest.mark.spike
def test_cpu_kernels_add_up_to_the_model(tmp_path: Path) -> None:
    target = load_target("rv64gc")
    onnx.save(samples.mlp(), str(tmp_path / "mlp.onnx"))
    result = compile_model(tmp_path / "mlp.onnx", target, make_options(), tmp_path / "b")
    run = run_build(target, result.build_dir, random_inputs(read_io(result.build_dir)["inputs"], 0), None, chart=True)
    profile = json.loads((result.build_dir / "run" / "profile.json").read_text())
    _assert_counts_add_up(profile, run.stats)
    assert profile["accelerator"] is None and accelerator_for(target) is None
    assert all(k["where"] == "cpu" and k["cycles"] == k["instret"] for k in profile["kernels"])
    assert (result.build_dir / "run" / "profile.png").is_file()
    # the CPU kernels name their ONNX nodes too, and their MACs are the graph's
    model = samples.mlp()
    assert sorted(n for k in profile["kernels"] for n in k["nodes"]) == sorted(
        n.name or f"{n.op_type}#{i}" for i, n in enumerate(model.graph.node))
    assert profile["total"]["macs"] == sum(k["macs"] for k in profile["kernels"]) == graph_macs(model) > 0
