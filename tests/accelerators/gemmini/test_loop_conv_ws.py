"""LOOP_CONV_WS, the conv loop unroller: tiled_conv_ex's LOOP_CONV_WS path (gemmini_conv_tiling.hw_loop)
is bit-identical to the CPU-issued one and to numpy over the sweeps of the tiled conv tests (shapes,
strides 1 and 2, padding 0-3, kernels 1x1 to 7x7 and rectangular, batches, bias or not, ReLU or not,
fused max pooling, channel slices, groups, forced tilings that split rows, columns, output and input
channels), on DIM 16 and DIM 8, in one Spike run per size; malformed loops trap; the tuner offers
both paths where the target has the unroller."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tvmx.accelerators import accelerator_for
from tvmx.accelerators.gemmini import Gemmini
from tvmx.accelerators.gemmini_tiling import FLOW_WS, ConvShape, conv_space, probe_for
from tvmx.target import load_target
from tvmx.toolchain.command import Executor

from .conftest import DATA, GuestRun, Rig, c_array, expect_trap
from .test_conv import CONVS
from .test_conv_pool import GUARD, HEADER, Case, cases, reference, weights
from .test_tiled import cfloat

pytestmark = [pytest.mark.toolchain, pytest.mark.spike]

OS_TARGET = Path(__file__).resolve().parents[2] / "data" / "targets" / "gemmini-os.yaml"  # no loops


def all_cases(dim: int) -> list[Case]:
    """test_conv_pool's cases, test_conv's as plain convs, and input-channel splits the loop path
    accumulates across loops (with and without bias, with pooling)."""
    plain = [Case(f"conv_{cv.name}", cv.n, cv.h, cv.w, cv.c, cv.oc, (cv.kh, cv.kw), cv.stride, cv.pad, None,
                  bias=cv.bias, relu=cv.relu, tiling=cv.tiling) for cv in CONVS]
    extra = [
        Case("ksplit_bias", 1, 10, 9, 3 * dim, 20, (3, 3), 1, 1, None, tiling=(3, 4, 1, 1)),
        Case("ksplit_nobias_pool", 1, 12, 11, 2 * dim + 5, 9, (3, 3), 1, 1, (2, 2, 0), bias=False,
             tiling=(2, 2, 1, 1)),
        Case("rect_5x3_s2", 1, 13, 11, 6, 10, (5, 3), 2, 2, None),
        Case("pool3_s2_p1_k_split_tiles", 1, 16, 15, 2 * dim, 2 * dim + 3, (3, 3), 1, 1, (3, 2, 1), relu=False,
             tiling=(3, 3, 1, 1)),
    ]
    return cases(dim) + plain + extra


PICK = """
#define OUT __attribute__((section(".tvmx_outputs"), aligned(64)))
static inline uint64_t instret(void) { uint64_t v; __asm__ volatile("csrr %0, minstret" : "=r"(v)); return v; }
/* the tiling of one path: the forced one with hw_loop set, or the header's automatic choice for it (packed or not) */
static int pick(gemmini_conv_tiling *t, const gemmini_conv_tiling *forced, int hw, int pack, size_t n, size_t h,
                size_t w, size_t c, size_t oc, size_t oh, size_t ow, size_t s, size_t p, size_t kh, size_t kw,
                size_t psz, size_t pst, size_t ppad) {
  gemmini_conv_ctx x;
  if (!gemmini_conv_init(&x, n, h, w, c, oc, oh, ow, s, p, kh, kw, psz, pst, ppad)) return 0;
  if (forced) {
    gemmini_conv_tiling u = *forced;
    u.hw_loop = (size_t)hw;
    if (!gemmini_conv_plan(&x, u)) return 0;
    *t = u;
    return 1;
  }
  if (!gemmini_conv_auto_tiling_issue(&x, (size_t)hw, (size_t)pack)) return 0;
  *t = x.t;
  return 1;
}
"""


def build_program(cs: list[Case], rng: np.random.Generator,
                  pack_loop: bool = False) -> tuple[str, str, dict[str, np.ndarray]]:
    """run_<i>(hw) runs case i through tiled_conv_ex (tiled_conv_grouped when grouped) with the loop
    path on or off into out_<name>[hw] (with `pack_loop`, the loop path's taps packed into channels);
    out_used[i][hw] says the path's tiling was accepted (+2 loop, +4 packed), out_perf[i] holds
    (instret, cycles) of the CPU path, then of the loop path."""
    data, body, want = [], [HEADER + "#include \"case_data.h\"\n" + PICK], {}
    body.append(f"OUT uint64_t out_used[{len(cs)}][2];\nOUT uint64_t out_perf[{len(cs)}][4];")
    for i, cv in enumerate(cs):
        oh, ow = cv.conv_hw
        ph, pw = cv.out_hw
        (ib, ia), (ob, oa) = cv.in_slice, cv.out_slice
        in_stride, out_stride = ib + cv.in_channels + ia, ob + cv.out_channels + oa
        x = rng.integers(-128, 128, (cv.n, cv.h, cv.w, in_stride))
        w = weights(cv, rng)
        b = rng.integers(-60000, 60000, (cv.out_channels,)) if cv.bias else None
        init = rng.integers(-128, 128, (cv.n * ph * pw * out_stride + GUARD,))
        expect = init.copy()
        view = expect[:cv.n * ph * pw * out_stride].reshape(cv.n, ph, pw, out_stride)
        view[..., ob:ob + cv.out_channels] = reference(cv, x[..., ib:ib + cv.in_channels], w, b)
        want[cv.name] = expect
        data += [c_array(f"X{i}", x, "int8_t"), c_array(f"W{i}", w, "int8_t"), c_array(f"I{i}", init, "int8_t")]
        if b is not None:
            data.append(c_array(f"B{i}", b, "int32_t"))
        psz, pst, ppad = cv.pool or (0, 0, 0)
        shape = (f"{cv.n}, {cv.h}, {cv.w}, {cv.c}, {cv.oc}, {oh}, {ow}, {cv.stride}, {cv.pad}, {cv.k[0]}, {cv.k[1]}, "
                 f"{psz}, {pst}, {ppad}")
        forced = "NULL"
        if cv.tiling:
            body.append(f"static const gemmini_conv_tiling T{i} = {{{', '.join(map(str, cv.tiling))}}};")
            forced = f"&T{i}"
        pointers = (f"&X{i}[0][0][0][{ib}], &W{i}{'[0]' * w.ndim}, {f'B{i}' if cv.bias else 'NULL'}, "
                    f"out_{cv.name}[hw] + {ob}, {cfloat(cv.scale)}, {int(cv.relu)}, &t")
        if cv.groups:
            call = (f"tiled_conv_grouped({cv.n}, {cv.h}, {cv.w}, {cv.groups}, {cv.c}, {cv.oc}, {oh}, {ow}, "
                    f"{cv.stride}, {cv.pad}, {cv.k[0]}, {cv.k[1]}, {psz}, {pst}, {ppad}, {pointers});")
        else:
            call = (f"tiled_conv_ex({cv.n}, {cv.h}, {cv.w}, {cv.c}, {in_stride}, {cv.oc}, {out_stride}, {oh}, {ow}, "
                    f"{cv.stride}, {cv.pad}, {cv.k[0]}, {cv.k[1]}, {psz}, {pst}, {ppad}, {pointers});")
        body.append(
            f"OUT int8_t out_{cv.name}[2][{init.size}];\n"
            f"static void run_{i}(int hw) {{\n"
            f"  gemmini_conv_tiling t;\n"
            f"  out_used[{i}][hw] = (uint64_t)pick(&t, {forced}, hw, {int(pack_loop)} && hw, {shape});\n"
            f"  if (!out_used[{i}][hw]) return;\n"
            f"  out_used[{i}][hw] += (t.hw_loop << 1) + (t.pack << 2);\n"
            f"  memcpy(out_{cv.name}[hw], I{i}, sizeof I{i});\n"
            f"  const uint64_t i0 = instret(), c0 = gemmini_counter(GEMMINI_CTR_CYCLES);\n"
            f"  {call}\n"
            f"  out_perf[{i}][2 * hw] = instret() - i0;\n"
            f"  out_perf[{i}][2 * hw + 1] = gemmini_counter(GEMMINI_CTR_CYCLES) - c0;\n"
            "}")
    calls = " ".join(f"run_{i}(0); run_{i}(1);" for i in range(len(cs)))
    body.append(f"int main(void) {{ {calls} return 0; }}\n")
    return "".join(data), "\n".join(body), want


@pytest.fixture(scope="session")
def loop_conv_run(rig: Rig) -> tuple[GuestRun, list[Case], dict[str, np.ndarray]]:
    cs = all_cases(rig.dim)
    data, source, want = build_program(cs, np.random.default_rng(31 + rig.dim))
    return rig.run_source("loop_conv_ws", source, data, timeout=600), cs, want


@pytest.mark.parametrize("case", [cv.name for cv in all_cases(16)])
def test_loop_path_is_bit_identical(loop_conv_run: tuple[GuestRun, list[Case], dict[str, np.ndarray]],
                                    case: str) -> None:
    run, cs, want = loop_conv_run
    i = next(i for i, cv in enumerate(cs) if cv.name == case)
    used = run.array("out_used", np.uint64, (len(cs), 2))[i]
    assert used.tolist() == [1, 3], f"{case}: tilings accepted/loop per path (CPU, loop): {used.tolist()}"
    ref = want[case]
    cpu, hw = run.array(f"out_{case}", np.int8, (2, ref.size)).astype(np.int64)
    assert np.array_equal(cpu, hw), f"{case}: {np.count_nonzero(cpu != hw)} bytes differ between the paths"
    bad = np.argwhere(hw != ref)
    assert bad.size == 0, f"{case}: {len(bad)}/{ref.size} bytes differ from numpy (written channels, untouched " \
        f"channels and the guard); first at byte {bad[0][0]}: got {hw[bad[0][0]]} want {ref[bad[0][0]]}"


def test_loop_path_leaves_the_issuing_to_the_unroller(
        loop_conv_run: tuple[GuestRun, list[Case], dict[str, np.ndarray]]) -> None:
    run, cs, _ = loop_conv_run
    perf = run.array("out_perf", np.uint64, (len(cs), 4)).astype(np.int64)
    assert perf[:, 2].sum() * 4 < perf[:, 0].sum(), perf[:, [0, 2]].sum(axis=0)
    i = next(i for i, cv in enumerate(cs) if cv.name == "conv_bench_32x32x16_to_32")
    instret_cpu, cycles_cpu, instret_hw, cycles_hw = perf[i]
    assert instret_hw * 10 < instret_cpu and cycles_hw < cycles_cpu, perf[i]


def packed_cases(dim: int) -> list[Case]:
    """Few-channel convs (RGB stems) that the header packs: a kernel row's taps as channels of
    overlapping input pixels, read by the unroller with a pixel stride under its channel count."""
    return [
        Case("stem_3x3_pool", 1, 32, 32, 3, 16, (3, 3), 1, 1, (2, 2, 0)),
        Case("stem_7x7_s2_pool", 1, 40, 38, 3, 20, (7, 7), 2, 3, (3, 2, 1)),
        Case("stem_5x5_nobias_slice", 2, 13, 11, 4, dim + 3, (5, 5), 1, 2, None, bias=False, relu=False,
             in_slice=(2, 1)),
    ]


@pytest.fixture(scope="session")
def packed_loop_run(rig: Rig) -> tuple[GuestRun, list[Case], dict[str, np.ndarray]]:
    cs = packed_cases(rig.dim)
    data, source, want = build_program(cs, np.random.default_rng(41 + rig.dim), pack_loop=True)
    return rig.run_source("loop_conv_packed", source, data, timeout=600), cs, want


@pytest.mark.parametrize("case", [cv.name for cv in packed_cases(16)])
def test_packed_loop_path_is_bit_identical(packed_loop_run: tuple[GuestRun, list[Case], dict[str, np.ndarray]],
                                           case: str) -> None:
    run, cs, want = packed_loop_run
    i = next(i for i, cv in enumerate(cs) if cv.name == case)
    used = run.array("out_used", np.uint64, (len(cs), 2))[i]
    assert used.tolist() == [1, 7], f"{case}: tilings accepted/loop/packed per path (CPU, loop): {used.tolist()}"
    ref = want[case]
    cpu, hw = run.array(f"out_{case}", np.int8, (2, ref.size)).astype(np.int64)
    assert np.array_equal(hw, ref) and np.array_equal(cpu, ref), \
        f"{case}: {np.count_nonzero(hw != ref)} bytes (loop, packed), {np.count_nonzero(cpu != ref)} (CPU) off numpy"


def test_cases_cover_the_brief() -> None:
    """Beyond test_conv_pool's and test_conv's coverage: input-channel splits with and without bias,
    with pooling, and a kernel taller than wide (not a simulator test)."""
    cs = all_cases(16)
    split = [cv for cv in cs if cv.tiling and cv.tiling[3] * 16 < cv.c]
    assert {cv.bias for cv in split} == {True, False} and any(cv.pool for cv in split)
    assert any(cv.k[0] > cv.k[1] for cv in cs) and any(cv.k[0] < cv.k[1] for cv in cs)
    assert any(cv.groups for cv in cs) and any(cv.in_slice[0] for cv in cs)


TRAPS = {
    "missing_config": "config commands missing",
    "config_consumed": "config commands missing",
    "zero_bounds": "must be >= 1",
    "dilation": "kernel dilation 2",
    "unsupported_flags": "unsupported flags",
    "bad_padding": "padding 1+1 rows",
    "sp_overflow": "exceed half the scratchpad",
    "acc_overflow": "exceeds half the accumulator",
    "nothing_to_accumulate": "accumulate onto the last loop's tile",
    "bad_pool": "reach past",
}


@pytest.mark.parametrize("case", list(TRAPS))
def test_bad_loop_traps(rig: Rig, case: str) -> None:
    expect_trap(rig, DATA / "loop_conv_ws.c", "loop_conv_trap", case, TRAPS[case])


def test_target_without_the_unroller_traps_on_it(tmp_path: Path) -> None:
    rig = Rig(load_target(str(OS_TARGET)), tmp_path)
    assert "#define GEMMINI_HAS_LOOP_CONV 0\n" in rig.gemmini.config.params_header()
    expect_trap(rig, DATA / "loop_conv_ws.c", "loop_conv_trap", "no_unroller", "no LOOP_CONV_WS unroller")


@pytest.mark.parametrize("name", ["gemmini", "gemmini-8"])
def test_tuner_offers_both_paths_loop_by_default(name: str) -> None:
    g = accelerator_for(load_target(name))
    assert isinstance(g, Gemmini)
    assert "#define GEMMINI_HAS_LOOP_CONV 1\n" in g.config.params_header()
    assert "has_loop_conv 1\n" in g.config.model_config()
    probe = probe_for(g, Executor())
    shape = ConvShape(1, 16, 16, 32, 32, 16, 16, 1, 1, 3, 3)
    default = probe.conv(shape)
    assert default is not None and default.hw_loop == 1 and default.dataflow == FLOW_WS
    space = conv_space(probe, shape, g.flows)
    assert {t.hw_loop for t in space} == {0, 1}
    assert all(t.dataflow == FLOW_WS for t in space if t.hw_loop)
    assert replace(default, hw_loop=0) in space
    os_only = accelerator_for(load_target(str(OS_TARGET)))
    assert isinstance(os_only, Gemmini)
    os_probe = probe_for(os_only, Executor())
    os_default = os_probe.conv(shape)
    assert os_default is not None and os_default.hw_loop == 0
    assert not any(t.hw_loop for t in conv_space(os_probe, shape, os_only.flows))
