"""The output-stationary dataflow of the header's kernels on the Spike model, for DIM 16 and DIM 8:
tiled_matmul in OS is bit-identical to WS and to numpy over ragged M/N/K, bias none / per column /
full, ReLU, int32 output, mvin scales, several tilings and lookaheads; every conv of test_conv and
test_conv_pool (strides, padding, pooling, channel slices, groups, the 1x1 matmul shortcut) in OS
matches numpy; tilings the header does not accept trap instead of computing garbage."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from tvmx.errors import GuestError
from tvmx.simulator.guest import check_exit

from . import test_conv, test_conv_pool
from .conftest import GuestRun, Rig, c_array
from .test_tiled import cfloat, matmul_reference

pytestmark = [pytest.mark.toolchain, pytest.mark.spike]

WS, OS = 1, 2  # gemmini.h's GEMMINI_FLOW_WS / GEMMINI_FLOW_OS
OUT = '__attribute__((section(".tvmx_outputs"), aligned(64)))'


@dataclass(frozen=True)
class Mm:
    name: str
    m: int
    n: int
    k: int
    bias: str  # "none", "row" (one bias row, stride_D 0) or "full"
    act: int
    c_int32: bool
    tilings: tuple[tuple[int, int, int, int], ...]  # (i, j, k, lookahead); () for the header's choice
    acc_scale: float = 1.0
    a_scale: float = 1.0
    b_scale: float = 1.0


MATMULS = [
    Mm("ragged_relu_rowbias", 37, 45, 70, "row", 1, False, ((1, 1, 1, 0), (2, 3, 2, 1), (3, 3, 5, 8)), 1 / 64),
    Mm("ragged_int32_nobias", 50, 33, 90, "none", 0, True, ((2, 1, 3, 2), (4, 3, 6, 0))),
    Mm("full_bias", 64, 64, 64, "full", 0, False, ((4, 4, 4, 0), (1, 2, 1, 4)), 1 / 128),
    Mm("one_row", 1, 130, 200, "row", 1, False, ((1, 9, 13, 6), (1, 2, 2, 1)), 1 / 256),
    Mm("one_column", 77, 1, 33, "full", 0, True, ((5, 1, 3, 3),)),
    Mm("k_split_relu", 48, 80, 300, "row", 1, False, ((3, 5, 2, 2), (2, 2, 19, 0)), 1 / 512),
    Mm("mvin_scales", 24, 24, 24, "none", 0, True, ((2, 2, 2, 0),), a_scale=0.5, b_scale=2.0),
    Mm("header_choice", 129, 100, 257, "row", 0, False, (), 1 / 512),
]


def mm_program(rng: np.random.Generator) -> tuple[str, str, dict[str, np.ndarray]]:
    """Every matmul under each of its tilings in both dataflows (the header's own tiling when it
    has none), outputs out_<name>_<n>."""
    data, body, calls, want = [], [], [], {}
    for c, mm in enumerate(MATMULS):
        a = rng.integers(-128, 128, (mm.m, mm.k))
        b = rng.integers(-128, 128, (mm.k, mm.n))
        d = rng.integers(-50000, 50000, (1 if mm.bias == "row" else mm.m, mm.n))
        data += [c_array(f"A{c}", a, "int8_t"), c_array(f"B{c}", b, "int8_t"), c_array(f"D{c}", d, "int32_t")]
        dptr, sd = ("NULL", 0) if mm.bias == "none" else (f"&D{c}[0][0]", 0 if mm.bias == "row" else mm.n)
        ref = matmul_reference(a, b, None if mm.bias == "none" else d, a_scale=mm.a_scale, b_scale=mm.b_scale,
                               acc_scale=mm.acc_scale, act=mm.act, c_int32=mm.c_int32)
        ctype = "int32_t" if mm.c_int32 else "int8_t"
        args = (f"{mm.m}, {mm.n}, {mm.k}, &A{c}[0][0], &B{c}[0][0], {dptr}, out, {mm.k}, {mm.n}, {sd}, {mm.n}, "
                f"{cfloat(mm.a_scale)}, {cfloat(mm.b_scale)}, {cfloat(mm.acc_scale)}, {mm.act}, {int(mm.c_int32)}")
        body.append(f"static void mm{c}(void *out, gemmini_tiling t) {{ tiled_matmul({args}, t); }}")
        tilings = [f"(gemmini_tiling){{{i}, {j}, {k}, {flow}, {la}}}" for i, j, k, la in mm.tilings
                   for flow in (WS, OS)]
        if not mm.tilings:
            tilings = [f"with_flow(gemmini_auto_tiling({mm.m}, {mm.n}, {mm.k}), {flow})" for flow in (WS, OS)]
        for n, tiling in enumerate(tilings):
            body.append(f"{OUT} {ctype} out_{mm.name}_{n}[{mm.m * mm.n}];")
            calls.append(f"mm{c}(out_{mm.name}_{n}, {tiling});")
            want[f"out_{mm.name}_{n}"] = ref
    helper = ("/* the auto tiling in another dataflow: LOOP_WS is WS only */\n"
              "static gemmini_tiling with_flow(gemmini_tiling t, size_t flow) {\n"
              "  t.dataflow = flow, t.hw_loop = t.hw_loop && flow == GEMMINI_FLOW_WS;\n  return t;\n}")
    body.append("int main(void) {\n  " + "\n  ".join(calls) + "\n  return 0;\n}")
    source = "#include <stddef.h>\n#include <stdint.h>\n#include \"gemmini.h\"\n#include \"case_data.h\"\n"
    return "".join(data), source + helper + "\n" + "\n".join(body) + "\n", want


@pytest.fixture(scope="session")
def mm_run(rig: Rig) -> tuple[GuestRun, dict[str, np.ndarray]]:
    data, source, want = mm_program(np.random.default_rng(3 + rig.dim))
    return rig.run_source("dataflow_mm", source, data, timeout=300), want


def runs_of(mm: Mm) -> int:
    return 2 * max(1, len(mm.tilings))


@pytest.mark.parametrize("case", [mm.name for mm in MATMULS])
def test_os_matmul_is_bit_identical_to_ws(mm_run: tuple[GuestRun, dict[str, np.ndarray]], case: str) -> None:
    run, want = mm_run
    mm = next(m for m in MATMULS if m.name == case)
    dtype = np.int32 if mm.c_int32 else np.int8
    outs = [run.array(f"out_{case}_{n}", dtype, (mm.m, mm.n)).astype(np.int64) for n in range(runs_of(mm))]
    ref = want[f"out_{case}_0"]
    for n, got in enumerate(outs):
        flow = "WS" if n % 2 == 0 else "OS"
        bad = np.argwhere(got != ref)
        assert bad.size == 0, f"{case} run {n} ({flow}): {len(bad)}/{ref.size} differ from numpy; first " \
            f"{tuple(bad[0])}: got {got[tuple(bad[0])]} want {ref[tuple(bad[0])]}"
        assert np.array_equal(got, outs[n - n % 2]), f"{case} run {n}: OS differs from WS"


def test_matmul_cases_cover_the_brief() -> None:
    """Ragged sizes on every axis, every bias mode, ReLU and int32 output, K split over steps."""
    assert all(any(getattr(m, ax) % 16 for m in MATMULS) for ax in ("m", "n", "k"))
    assert {m.bias for m in MATMULS} == {"none", "row", "full"} and {m.act for m in MATMULS} == {0, 1}
    assert {m.c_int32 for m in MATMULS} == {True, False}
    assert any(t[2] * 16 < m.k for m in MATMULS for t in m.tilings)


def test_os_matmul_moves_the_same_data(mm_run: tuple[GuestRun, dict[str, np.ndarray]]) -> None:
    """Both dataflows did the work on the array (the MAC count of every run, WS and OS alike)."""
    run, _ = mm_run
    macs = sum(runs_of(mm) * mm.m * mm.n * mm.k for mm in MATMULS)
    assert run.stats["macs"] == macs


# ---------------------------------------------------------------- convs in OS

def conv_cases(dim: int) -> list[test_conv_pool.Case]:
    """test_conv_pool's cases plus test_conv's (same semantics, another reference path)."""
    extra = [test_conv_pool.Case(f"conv_{cv.name}", cv.n, cv.h, cv.w, cv.c, cv.oc, (cv.kh, cv.kw), cv.stride, cv.pad,
                                 None, bias=cv.bias, relu=cv.relu, tiling=cv.tiling)
             for cv in test_conv.CONVS]
    return test_conv_pool.cases(dim) + extra


@pytest.fixture(scope="session")
def os_conv_run(rig: Rig) -> tuple[GuestRun, dict[str, np.ndarray]]:
    data, source, want = test_conv_pool.build_program(conv_cases(rig.dim), np.random.default_rng(5 + rig.dim), os=True)
    return rig.run_source("dataflow_conv", source, data, timeout=600), want


@pytest.mark.parametrize("case", [cv.name for cv in conv_cases(16)])
def test_os_conv(os_conv_run: tuple[GuestRun, dict[str, np.ndarray]], case: str) -> None:
    run, want = os_conv_run
    ref = want[case]
    got = run.array(f"out_{case}", np.int8, ref.shape).astype(np.int64)
    bad = np.argwhere(got != ref)
    assert bad.size == 0, f"{case} (OS): {len(bad)}/{ref.size} bytes differ; first at byte {bad[0][0]}: " \
        f"got {got[bad[0][0]]} want {ref[bad[0][0]]}"


# ---------------------------------------------------------------- illegal tilings trap

TRAPS = {
    "matmul_zero_i": "tiled_matmul(8, 8, 8, a, a, NULL, c, 8, 8, 0, 8, 1.0f, 1.0f, 1.0f, 0, 0, "
                     "(gemmini_tiling){0, 1, 1, 0, 0});",
    "matmul_too_big": "tiled_matmul(8, 8, 8, a, a, NULL, c, 8, 8, 0, 8, 1.0f, 1.0f, 1.0f, 0, 0, "
                      "(gemmini_tiling){64, 64, 1, 0, 0});",
    "matmul_bad_dataflow": "tiled_matmul(8, 8, 8, a, a, NULL, c, 8, 8, 0, 8, 1.0f, 1.0f, 1.0f, 0, 0, "
                           "(gemmini_tiling){1, 1, 1, 3, 0});",
    "matmul_bad_lookahead": "tiled_matmul(8, 8, 8, a, a, NULL, c, 8, 8, 0, 8, 1.0f, 1.0f, 1.0f, 0, 0, "
                            "(gemmini_tiling){1, 1, 1, 2, GEMMINI_MAX_LOOKAHEAD + 1});",
    "conv_bad_dataflow": "{ const gemmini_conv_tiling t = {1, 1, 1, 1, 3, 0, {0, 0, 0, 0, 0}}; "
                         "tiled_conv(1, 8, 8, 4, 4, 8, 8, 1, 1, 3, 3, a, a, NULL, c, 1.0f, 0, &t); }",
    "conv_1x1_bad_matmul": "{ const gemmini_conv_tiling t = {0, 0, 0, 0, 0, 0, {0, 1, 1, 1, 0}}; "
                           "tiled_conv(1, 8, 8, 4, 4, 8, 8, 1, 0, 1, 1, a, a, NULL, c, 1.0f, 0, &t); }",
    # th = 0 runs a conv as a matmul (1x1, or by im2col), which cannot pool
    "conv_th_zero_pooled": "{ const gemmini_conv_tiling t = {0, 0, 0, 0, 0, 0, {1, 1, 1, 1, 0}}; "
                           "tiled_conv_ex(1, 8, 8, 4, 4, 4, 4, 8, 8, 1, 1, 3, 3, 2, 2, 0, a, a, NULL, c, 1.0f, 0, "
                           "&t); }",
}
TRAP_PROGRAM = """#include <stddef.h>
#include <stdint.h>
#include "gemmini.h"
static int8_t a[1024], c[1024];
int main(void) {
  %s
  return 0;
}
"""


@pytest.mark.parametrize("case", list(TRAPS))
def test_illegal_tiling_traps(rig: Rig, case: str) -> None:
    src = rig.workdir / f"tiling_trap_{case}.c"
    src.write_text(TRAP_PROGRAM % TRAPS[case])
    elf = rig.build(f"tiling_trap_{case}", src)
    run = rig.run(elf)
    with pytest.raises(GuestError) as info:
        check_exit(run.returncode, run.console, elf)
    assert "(mcause 2)" in info.value.message and "gemmini: illegal command" in run.stderr, run.stderr
    assert run.stats.get("macs", 0) == 0  # nothing was computed before the trap
