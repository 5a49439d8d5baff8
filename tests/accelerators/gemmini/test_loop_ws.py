"""LOOP_WS, the hardware loop unroller: tiled_matmul's LOOP_WS path (gemmini_tiling.hw_loop) is
bit-identical to the CPU-issued one and to numpy over ragged shapes, bias modes, ReLU and int32
output, on DIM 16 and DIM 8; one 1x1x1-block loop takes the cycles worked out by hand from
TIMING.md; malformed loops trap; the tuner offers both paths where the target has the unroller."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tvmx.accelerators import accelerator_for
from tvmx.accelerators.gemmini import Gemmini
from tvmx.accelerators.gemmini_tiling import FLOW_WS, matmul_space, probe_for
from tvmx.simulator.guest import check_exit
from tvmx.target import load_target
from tvmx.toolchain.command import Executor

from .conftest import DATA, GuestRun, Rig, c_array, expect_trap
from .test_instructions import rne_sat
from .test_tiled import cfloat, matmul_reference

pytestmark = [pytest.mark.toolchain, pytest.mark.spike]

OS_TARGET = Path(__file__).resolve().parents[2] / "data" / "targets" / "gemmini-os.yaml"  # no loops: [ws]


@dataclass(frozen=True)
class Mm:
    name: str
    m: int
    n: int
    k: int
    bias: str  # "none", "row" (one bias row, stride_D 0) or "full"
    act: int
    c_int32: bool
    tiling: tuple[int, int, int] | None  # None: gemmini_auto_tiling's
    acc_scale: float = 1 / 64
    a_scale: float = 1.0
    pad_a: int = 0  # extra row-stride elements of A (and of C)


# k < K's blocks: loops accumulate onto the tile (ex_accumulate); k spanning K with several column
# tiles: the A panel is reused (a_spad_id); ragged sizes pad the last blocks.
MATMULS = [
    Mm("ragged_relu_rowbias", 37, 45, 70, "row", 1, False, None),
    Mm("ksplit_int32", 64, 64, 64, "none", 0, True, (2, 2, 2)),
    Mm("ksplit_fullbias", 16, 200, 33, "full", 0, False, (1, 3, 1), acc_scale=0.01),
    Mm("tiny_tiles", 50, 50, 50, "full", 0, True, (1, 1, 1)),
    Mm("reuse_a_relu", 40, 100, 70, "row", 1, False, (2, 1, 9)),
    Mm("tall_relu", 100, 30, 130, "none", 1, False, (3, 2, 9), acc_scale=1 / 256),
    Mm("strided_scaled", 20, 24, 40, "row", 0, False, None, acc_scale=1 / 32, a_scale=0.5, pad_a=8),
    Mm("one_element", 1, 1, 1, "row", 1, False, None, acc_scale=0.5),
    Mm("bigger", 128, 96, 160, "full", 0, False, None, acc_scale=1 / 512),
]


def reference(mm: Mm, a: np.ndarray, b: np.ndarray, d: np.ndarray) -> np.ndarray:
    return matmul_reference(a[:, :mm.k], b, None if mm.bias == "none" else d, a_scale=mm.a_scale, b_scale=1.0,
                            acc_scale=mm.acc_scale, act=mm.act, c_int32=mm.c_int32)


def case_source(i: int, mm: Mm) -> str:
    """run_<i>(hw): the matmul through tiled_matmul with hw_loop = hw; instructions and cycles."""
    sa, sc = mm.k + mm.pad_a, mm.n + mm.pad_a
    dptr, sd = ("NULL", 0) if mm.bias == "none" else (f"&D{i}[0][0]", 0 if mm.bias == "row" else mm.n)
    tiling = (f"gemmini_auto_tiling({mm.m}, {mm.n}, {mm.k})" if mm.tiling is None
              else f"(gemmini_tiling){{{', '.join(map(str, mm.tiling))}, GEMMINI_FLOW_WS, 0, 0}}")
    ctype = "int32_t" if mm.c_int32 else "int8_t"
    return (
        f"OUT {ctype} out_{mm.name}[2][{mm.m * sc}];\n"
        f"static void run_{i}(int hw) {{\n"
        f"  gemmini_tiling t = {tiling};\n  t.hw_loop = hw;\n"
        f"  const uint64_t i0 = instret(), c0 = gemmini_counter(GEMMINI_CTR_CYCLES);\n"
        f"  tiled_matmul({mm.m}, {mm.n}, {mm.k}, &A{i}[0][0], &B{i}[0][0], {dptr}, out_{mm.name}[hw], {sa}, {mm.n}, "
        f"{sd}, {sc}, {cfloat(mm.a_scale)}, 1.0f, {cfloat(mm.acc_scale)}, {mm.act}, {int(mm.c_int32)}, t);\n"
        f"  out_perf[{i}][2 * hw] = instret() - i0;\n"
        f"  out_perf[{i}][2 * hw + 1] = gemmini_counter(GEMMINI_CTR_CYCLES) - c0;\n"
        "}\n")


def build_program(rng: np.random.Generator) -> tuple[str, str, dict[str, np.ndarray]]:
    data, body, want = [], [], {}
    for i, mm in enumerate(MATMULS):
        a = rng.integers(-128, 128, (mm.m, mm.k + mm.pad_a))
        b = rng.integers(-128, 128, (mm.k, mm.n))
        d = rng.integers(-50000, 50000, (1 if mm.bias == "row" else mm.m, mm.n))
        data += [c_array(f"A{i}", a, "int8_t"), c_array(f"B{i}", b, "int8_t"), c_array(f"D{i}", d, "int32_t")]
        want[mm.name] = reference(mm, a, b, d)
        body.append(case_source(i, mm))
    calls = " ".join(f"run_{i}(0); run_{i}(1);" for i in range(len(MATMULS)))
    head = ("#include <stddef.h>\n#include <stdint.h>\n#include \"gemmini.h\"\n#include \"case_data.h\"\n"
            "#define OUT __attribute__((section(\".tvmx_outputs\"), aligned(64)))\n"
            f"OUT uint64_t out_perf[{len(MATMULS)}][4];\n"
            "static inline uint64_t instret(void) { uint64_t v; __asm__ volatile(\"csrr %0, minstret\" : \"=r\"(v)); "
            "return v; }\n")
    return "".join(data), head + "".join(body) + f"int main(void) {{ {calls} return 0; }}\n", want


@pytest.fixture(scope="session")
def loop_run(rig: Rig) -> tuple[GuestRun, dict[str, np.ndarray]]:
    data, source, want = build_program(np.random.default_rng(11 + rig.dim))
    return rig.run_source("loop_ws", source, data), want


@pytest.mark.parametrize("case", [m.name for m in MATMULS])
def test_loop_path_is_bit_identical(loop_run: tuple[GuestRun, dict[str, np.ndarray]], case: str) -> None:
    run, want = loop_run
    i, mm = next((i, m) for i, m in enumerate(MATMULS) if m.name == case)
    sc = mm.n + mm.pad_a
    both = run.array(f"out_{case}", np.int32 if mm.c_int32 else np.int8, (2, mm.m, sc)).astype(np.int64)
    cpu, hw = both
    assert np.array_equal(cpu, hw), f"{case}: {np.count_nonzero(cpu != hw)} elements differ between the paths"
    assert not hw[:, mm.n:].any(), "wrote outside C's columns"
    bad = np.argwhere(hw[:, :mm.n] != want[case])
    assert bad.size == 0, f"{case}: {len(bad)} differ from numpy, first at {tuple(bad[0])}"
    instret_cpu, _, instret_hw, _ = run.array("out_perf", np.uint64, (len(MATMULS), 4))[i]
    assert instret_hw < instret_cpu, "the LOOP_WS path should leave the issuing to the unroller"


def test_loop_path_is_faster_where_the_cpu_was_the_limit(loop_run: tuple[GuestRun, dict[str, np.ndarray]]) -> None:
    run, _ = loop_run
    perf = run.array("out_perf", np.uint64, (len(MATMULS), 4)).astype(np.int64)
    i = next(i for i, m in enumerate(MATMULS) if m.name == "bigger")
    _, cycles_cpu, _, cycles_hw = perf[i]
    assert cycles_hw < cycles_cpu, (cycles_cpu, cycles_hw)


def test_one_block_loop_takes_the_hand_computed_cycles(rig: Rig) -> None:
    """Counter, LOOP_WS, flush, counter on idle units. The unroller issues at t0 (the loop's cycle),
    one command per cycle: mvin A (load unit t0..t0+d: d rows of one beat), mvin2 B (t0+d..t0+2d),
    preload (waits for B to land, + dma_latency; the array was idle: preload_cycles), compute
    (compute_cycles, its rows land pipeline_latency later), mvout (d rows of one beat, then
    spad_read_latency + dma_latency until stored). The reads are 1 + that span + 1 (flush) apart."""
    elf = rig.build("loop_cycles", DATA / "loop_ws.c", defines=("CASE_CYCLES",))
    run = rig.run(elf)
    check_exit(run.returncode, run.console, elf)
    t, d = dict(rig.gemmini.config.timing), rig.dim
    span = (2 * d + t["dma_latency"] + t["preload_cycles"] + t["compute_cycles"] + t["pipeline_latency"] + d
            + t["spad_read_latency"] + t["dma_latency"])
    expected = {16: 318, 8: 262}[d]  # 48 + 200 + 16 + 16 + 32 + 4 (+ 2) at DIM 16; 24 + 200 + 8 + 8 + 16 + 4 at 8
    assert 1 + span + 1 == expected
    assert int(run.array("out_cycles", np.uint64, (1,))[0]) == expected
    a = (np.arange(d * d) * 7 % 23 - 11).reshape(d, d)
    b = (np.arange(d * d) * 5 % 19 - 9).reshape(d, d)
    assert np.array_equal(run.array("out_c", np.int8, (d, d)), rne_sat(a @ b, 1.0, -128, 127))


TRAPS = {
    "missing_config": "config commands missing",
    "config_consumed": "config commands missing",
    "zero_bounds": "must be >= 1",
    "bad_padding": "padding",
    "sp_overflow": "exceed half the scratchpad",
    "acc_overflow": "exceeds half the accumulator",
    "transpose": "unsupported flags",
    "bad_reuse": "reuse an A tile",
    "stride_mismatch": "config_mvin 0 must",
}


@pytest.mark.parametrize("case", list(TRAPS))
def test_bad_loop_traps(rig: Rig, case: str) -> None:
    expect_trap(rig, DATA / "loop_ws.c", "loop_trap", case, TRAPS[case])


def test_target_without_loops_traps_on_them(tmp_path: Path) -> None:
    rig = Rig(load_target(str(OS_TARGET)), tmp_path)
    assert "#define GEMMINI_HAS_LOOP_WS 0\n" in rig.gemmini.config.params_header()
    expect_trap(rig, DATA / "loop_ws.c", "loop_trap", "no_unroller", "no LOOP_WS unroller")


@pytest.mark.parametrize("name", ["gemmini", "gemmini-8"])
def test_tuner_offers_both_paths_loop_by_default(name: str) -> None:
    g = accelerator_for(load_target(name))
    assert isinstance(g, Gemmini)
    assert "#define GEMMINI_HAS_LOOP_WS 1\n" in g.config.params_header()
    assert "has_loop_ws 1\n" in g.config.model_config()
    probe = probe_for(g, Executor())
    assert probe.matmul(512, 512, 512).hw_loop == 1
    space = matmul_space(probe, 128, 128, 128, g.flows, g.config.dim)
    assert {t.hw_loop for t in space if t.dataflow == FLOW_WS} == {0, 1}
    assert all(t.dataflow == FLOW_WS for t in space if t.hw_loop)
    os_only = accelerator_for(load_target(str(OS_TARGET)))
    assert isinstance(os_only, Gemmini)
    os_probe = probe_for(os_only, Executor())
    assert os_probe.matmul(512, 512, 512).hw_loop == 0
    assert not any(t.hw_loop for t in matmul_space(os_probe, 64, 64, 64, os_only.flows, os_only.config.dim))
