"""The header's conv with channel slices and fused max pooling (tiled_conv_ex) and its grouped entry
(tiled_conv_grouped_auto) on the Spike model, element by element against numpy (conv -> requant ->
ReLU -> ONNX MaxPool), for DIM 16 and DIM 8: pools 2x2 and 3x3 with strides 1 and 2 and padding 0
and 1, odd conv outputs and conv outputs no window reads, conv stride 2, forced tilings whose
overlapping windows cross tile boundaries, channel counts that are not multiples of DIM, input and
output channel slices (the other channels of the output must stay as they were), the 1x1 matmul
shortcut on slices, depthwise and 2-group convs; malformed pooling commands trap, and the automatic
tiling is the same pure function on the host as in the guest."""

from __future__ import annotations

import math
from dataclasses import astuple, dataclass

import numpy as np
import pytest

from tvmx.accelerators.gemmini_tiling import ConvShape, TilingProbe
from tvmx.errors import GuestError
from tvmx.simulator.guest import check_exit

from .conftest import GuestRun, Rig, c_array
from .test_instructions import rne_sat
from .test_tiled import cfloat

pytestmark = [pytest.mark.toolchain, pytest.mark.spike]

GUARD = 64  # bytes after each output that must stay as they were
HEADER = "#include <stddef.h>\n#include <stdint.h>\n#include <string.h>\n#include \"gemmini.h\"\n"


@dataclass(frozen=True)
class Case:
    name: str
    n: int
    h: int
    w: int
    c: int  # input channels (per super-group when grouped)
    oc: int  # output channels (per super-group when grouped)
    k: tuple[int, int]
    stride: int
    pad: int
    pool: tuple[int, int, int] | None  # size, stride, padding
    bias: bool = True
    relu: bool = True
    tiling: tuple[int, int, int, int] | None = None  # th, tw (written output), tj, tk
    in_slice: tuple[int, int] = (0, 0)  # channels before and after the conv's input channels
    out_slice: tuple[int, int] = (0, 0)  # the same for the output
    groups: int = 0  # > 0: tiled_conv_grouped_auto with that many super-groups
    depthwise: bool = False  # grouped, each super-group's weights diagonal (one group per channel)

    @property
    def conv_hw(self) -> tuple[int, int]:
        kh, kw = self.k
        return ((self.h + 2 * self.pad - kh) // self.stride + 1, (self.w + 2 * self.pad - kw) // self.stride + 1)

    @property
    def out_hw(self) -> tuple[int, int]:
        oh, ow = self.conv_hw
        if self.pool is None:
            return oh, ow
        size, stride, pad = self.pool
        return (oh + 2 * pad - size) // stride + 1, (ow + 2 * pad - size) // stride + 1

    @property
    def in_channels(self) -> int:
        return self.c * max(self.groups, 1)

    @property
    def out_channels(self) -> int:
        return self.oc * max(self.groups, 1)

    @property
    def scale(self) -> float:
        """A power of two that brings the accumulator's spread to about +-64 (both int8 limits hit)."""
        taps = self.k[0] * self.k[1] * (1 if self.depthwise else self.c)
        return 2.0 ** -round(math.log2(math.sqrt(taps) * 128 * 128 / 3 / 64))


def cases(dim: int) -> list[Case]:
    return [
        Case("pool2_s2_p0", 1, 12, 12, 5, 7, (3, 3), 1, 1, (2, 2, 0)),
        Case("pool3_s2_p1_odd", 1, 15, 13, 20, 24, (3, 3), 1, 1, (3, 2, 1), relu=False),
        Case("pool3_s2_p0_conv_s2_batch2", 2, 23, 21, 3, 18, (3, 3), 2, 1, (3, 2, 0), bias=False, relu=False),
        Case("pool2_s2_p1", 1, 9, 10, 16, 9, (3, 3), 1, 1, (2, 2, 1)),
        Case("pool2_floor_unused", 1, 11, 9, 4, 5, (3, 3), 1, 1, (2, 2, 0), relu=False),  # last row/column unread
        Case("pool3_s1_p1", 1, 8, 9, 6, 6, (3, 3), 1, 1, (3, 1, 1), relu=False),
        Case("pool3_wide_rows", 1, 7, 40, 3, 8, (3, 3), 1, 1, (3, 2, 1)),
        Case("pool1_s2_subsample", 1, 9, 9, 5, 6, (1, 1), 1, 0, (1, 2, 0)),
        # forced tilings: overlapping windows across row and column tiles, output channels and K split
        Case("tiles_pool3_s2_p1", 1, 20, 19, 40, 40, (3, 3), 1, 1, (3, 2, 1), relu=False, tiling=(3, 4, 1, 1)),
        Case("tiles_pool2_conv5_s2", 1, 25, 25, 17, 33, (5, 5), 2, 2, (2, 2, 0), tiling=(2, 3, 2, 1)),
        Case("tiles_pool3_s1_p1", 1, 10, 11, 20, 10, (3, 3), 1, 1, (3, 1, 1), relu=False, tiling=(4, 5, 1, 2)),
        Case("tiles_pool3_one_row", 2, 13, 13, 9, 20, (3, 3), 1, 1, (3, 2, 1), tiling=(1, 7, 2, 1)),
        # channel slices of wider tensors
        Case("slices_pool3", 1, 13, 14, 12, 20, (3, 3), 1, 1, (3, 2, 1), relu=False, tiling=(2, 3, 1, 1),
             in_slice=(7, 11), out_slice=(9, 11)),
        Case("slices_conv_s2", 2, 11, 10, 10, 13, (3, 3), 2, 1, None, in_slice=(5, 9), out_slice=(3, 4)),
        Case("slices_conv_tiles", 1, 9, 12, 21, 18, (3, 3), 1, 1, None, relu=False, tiling=(2, 5, 1, 1),
             in_slice=(2, 1), out_slice=(1, 5)),
        Case("slices_1x1_matmul", 2, 5, 7, 20, 12, (1, 1), 1, 0, None, in_slice=(4, 8), out_slice=(6, 2)),
        Case("slices_1x1_pool2", 1, 8, 8, 9, 10, (1, 1), 1, 0, (2, 2, 0), in_slice=(3, 0), out_slice=(0, 6)),
        # grouped
        Case("depthwise_pool3", 1, 14, 14, dim, dim, (3, 3), 1, 1, (3, 2, 1), groups=3, depthwise=True),
        Case("depthwise_s2", 1, 15, 15, dim, dim, (3, 3), 2, 1, None, relu=False, groups=2, depthwise=True),
        Case("groups2_pool2", 1, 11, 12, 5, 6, (3, 3), 1, 1, (2, 2, 0), groups=2),
        Case("groups2_1x1", 1, 6, 5, 12, 10, (1, 1), 1, 0, None, relu=False, groups=2),
    ]


def conv_reference(x: np.ndarray, w: np.ndarray, bias: np.ndarray | None, cv: Case) -> np.ndarray:
    """x [n][h][w][c], w [kh][kw][c][oc]: int64 accumulators."""
    (kh, kw), s, p = cv.k, cv.stride, cv.pad
    oh, ow = cv.conv_hw
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    acc = np.zeros((x.shape[0], oh, ow, w.shape[3]), np.int64)
    for ky in range(kh):
        for kx in range(kw):
            acc += xp[:, ky:ky + s * (oh - 1) + 1:s, kx:kx + s * (ow - 1) + 1:s, :] @ w[ky, kx]
    return acc if bias is None else acc + bias


def maxpool_reference(y: np.ndarray, size: int, stride: int, pad: int) -> np.ndarray:
    """ONNX MaxPool, floor mode: padding never wins."""
    n, h, w, c = y.shape
    oh, ow = (h + 2 * pad - size) // stride + 1, (w + 2 * pad - size) // stride + 1
    yp = np.full((n, h + 2 * pad, w + 2 * pad, c), -(2**40), np.int64)
    yp[:, pad:pad + h, pad:pad + w] = y
    out = np.full((n, oh, ow, c), -(2**40), np.int64)
    for wy in range(size):
        for wx in range(size):
            out = np.maximum(out, yp[:, wy:wy + stride * (oh - 1) + 1:stride, wx:wx + stride * (ow - 1) + 1:stride])
    return out


def reference(cv: Case, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    """The written channels: x is the conv's input channels, w [groups][kh][kw][c][oc] when grouped."""
    if cv.groups:
        acc = np.concatenate([conv_reference(x[..., g * cv.c:(g + 1) * cv.c], w[g], None, cv)
                              for g in range(cv.groups)], axis=3)
        if bias is not None:
            acc += bias
    else:
        acc = conv_reference(x, w, bias, cv)
    y = rne_sat(acc, cv.scale, -128, 127)
    if cv.relu:
        y = np.maximum(y, 0)
    return y if cv.pool is None else maxpool_reference(y, *cv.pool)


def weights(cv: Case, rng: np.random.Generator) -> np.ndarray:
    kh, kw = cv.k
    if not cv.groups:
        return rng.integers(-128, 128, (kh, kw, cv.c, cv.oc))
    if not cv.depthwise:
        return rng.integers(-128, 128, (cv.groups, kh, kw, cv.c, cv.oc))
    # one channel per ONNX group, packed DIM to a super-group: block diagonal with 1x1 blocks
    w = np.zeros((cv.groups, kh, kw, cv.c, cv.oc), np.int64)
    idx = np.arange(cv.c)
    w[:, :, :, idx, idx] = rng.integers(-128, 128, (cv.groups, kh, kw, cv.c))
    return w


# os_tiling(given, shape...): the given tiling, or the one the header would choose (the matmul
# shortcut's for a 1x1 conv), in the OS dataflow
OS_TILING = """
static const gemmini_conv_tiling *os_tiling(const gemmini_conv_tiling *given, size_t n, size_t h, size_t w, size_t c,
                                            size_t oc, size_t oh, size_t ow, size_t s, size_t p, size_t kh, size_t kw,
                                            size_t psz, size_t pst, size_t ppad, gemmini_conv_tiling *t) {
  const gemmini_conv_tiling none = {0, 0, 0, 0, 0, 0, {0, 0, 0, 0, 0, 0}};
  *t = given ? *given : none;
  if (!given && gemmini_conv_is_matmul(h, w, oh, ow, s, p, kh, kw, psz))
    t->matmul = gemmini_auto_tiling(n * h * w, oc, c);
  else if (!given)
    gemmini_conv_choose_tiling(n, h, w, c, oc, oh, ow, s, p, kh, kw, psz, pst, ppad, t);
  t->dataflow = t->matmul.dataflow = GEMMINI_FLOW_OS;
  t->hw_loop = t->matmul.hw_loop = 0; /* LOOP_WS and LOOP_CONV_WS are WS only */
  return t;
}
"""


def build_program(cs: list[Case], rng: np.random.Generator, os: bool = False) -> tuple[str, str, dict[str, np.ndarray]]:
    """One program running every case (os: each in the OS dataflow, with its given tiling or the
    header's choice), its outputs `out_<name>`, and what they must hold."""
    data, body, calls, want = [], [], [], {}
    if os:
        body.append(OS_TILING)
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
        body.append(f"__attribute__((section(\".tvmx_outputs\"), aligned(64))) int8_t out_{cv.name}[{init.size}];")
        psz, pst, ppad = cv.pool or (0, 0, 0)
        pointers = (f"&X{i}[0][0][0][{ib}], &W{i}{'[0]' * w.ndim}, {f'B{i}' if cv.bias else 'NULL'}, "
                    f"out_{cv.name} + {ob}, {cfloat(cv.scale)}, {int(cv.relu)}")
        calls.append(f"memcpy(out_{cv.name}, I{i}, sizeof I{i});")
        shape = (f"{cv.n}, {cv.h}, {cv.w}, {cv.c}, {cv.oc}, {oh}, {ow}, {cv.stride}, {cv.pad}, {cv.k[0]}, {cv.k[1]}, "
                 f"{psz}, {pst}, {ppad}")
        if cv.tiling:
            body.append(f"static const gemmini_conv_tiling T{i} = {{{', '.join(map(str, cv.tiling))}}};")
        tiling = f"&T{i}" if cv.tiling else "NULL"
        if os:
            body.append(f"static gemmini_conv_tiling OS{i};")
            tiling = f"os_tiling({tiling}, {shape}, &OS{i})"
        if cv.groups and (os or cv.tiling):
            calls.append(f"tiled_conv_grouped({cv.n}, {cv.h}, {cv.w}, {cv.groups}, {cv.c}, {cv.oc}, {oh}, {ow}, "
                         f"{cv.stride}, {cv.pad}, {cv.k[0]}, {cv.k[1]}, {psz}, {pst}, {ppad}, {pointers}, {tiling});")
            continue
        if cv.groups:
            calls.append(f"tiled_conv_grouped_auto({cv.n}, {cv.h}, {cv.w}, {cv.groups}, {cv.c}, {cv.oc}, {oh}, {ow}, "
                         f"{cv.stride}, {cv.pad}, {cv.k[0]}, {cv.k[1]}, {psz}, {pst}, {ppad}, {pointers});")
            continue
        calls.append(f"tiled_conv_ex({cv.n}, {cv.h}, {cv.w}, {cv.c}, {in_stride}, {cv.oc}, {out_stride}, {oh}, {ow}, "
                     f"{cv.stride}, {cv.pad}, {cv.k[0]}, {cv.k[1]}, {psz}, {pst}, {ppad}, {pointers}, {tiling});")
    body.append("int main(void) {\n  " + "\n  ".join(calls) + "\n  return 0;\n}")
    return "".join(data), HEADER + "#include \"case_data.h\"\n" + "\n".join(body) + "\n", want


@pytest.fixture(scope="session")
def pool_run(rig: Rig) -> tuple[GuestRun, dict[str, np.ndarray]]:
    data, source, want = build_program(cases(rig.dim), np.random.default_rng(21 + rig.dim))
    return rig.run_source("conv_pool", source, data, timeout=300), want


@pytest.mark.parametrize("case", [cv.name for cv in cases(16)])
def test_conv_pool(pool_run: tuple[GuestRun, dict[str, np.ndarray]], case: str) -> None:
    run, want = pool_run
    ref = want[case]
    got = run.array(f"out_{case}", np.int8, ref.shape).astype(np.int64)
    bad = np.argwhere(got != ref)
    assert bad.size == 0, f"{case}: {len(bad)}/{ref.size} bytes differ (written channels, untouched channels " \
        f"and the guard); first at byte {bad[0][0]}: got {got[bad[0][0]]} want {ref[bad[0][0]]}"


def test_cases_cover_the_brief() -> None:
    """The case list keeps covering what it claims (not a simulator test)."""
    cs = cases(16)
    pooled = [cv for cv in cs if cv.pool]
    assert {cv.pool for cv in pooled} >= {(2, 2, 0), (3, 2, 1), (3, 2, 0), (2, 2, 1), (3, 1, 1)}
    assert any(cv.conv_hw[0] % 2 and cv.conv_hw[1] % 2 for cv in pooled)
    assert any(cv.stride == 2 for cv in pooled) and any(cv.n == 2 for cv in pooled)
    # forced tilings with several tiles both ways, where pooling windows overlap (size > stride)
    assert any(cv.tiling and cv.pool and cv.pool[0] > cv.pool[1] and cv.out_hw[0] > cv.tiling[0]
               and cv.out_hw[1] > cv.tiling[1] for cv in cs)
    assert any(cv.c % 16 for cv in pooled) and any(cv.oc % 16 for cv in pooled)
    assert any(cv.in_slice[0] and cv.out_slice[0] and cv.pool for cv in cs)
    assert any(cv.k == (1, 1) and cv.pool is None and cv.in_slice[0] for cv in cs)  # the matmul shortcut
    assert any(cv.depthwise and cv.pool for cv in cs) and any(cv.groups == 2 and not cv.depthwise for cv in cs)
    assert {cv.relu for cv in pooled} == {True, False}


def test_pool_stores_fewer_bytes(pool_run: tuple[GuestRun, dict[str, np.ndarray]]) -> None:
    """Pooled mvouts write only the pooled pixels: the bytes written are those of the outputs."""
    run, _ = pool_run
    written = sum(cv.n * cv.out_hw[0] * cv.out_hw[1] * cv.out_channels for cv in cases(run.stats["dim"]))
    assert run.stats["dma_bytes_written"] == written


# ---------------------------------------------------------------- malformed pooling traps

# rs1 fields of gemmini_config_st_pool after (dram_stride, act, acc_scale): pool_stride, pool_size,
# upad, lpad, pitch, pool_out_dim, porows, pocols, orows, ocols
VALID = (2, 2, 0, 0, 0, 4, 2, 2, 4, 4)
POOL_TRAPS: dict[str, tuple[str, str]] = {
    "size_zero": ("cfg(1, 0, 0, 0, 0, 4, 2, 2, 4, 4);", "pool size 0"),
    "fields_without_stride": ("cfg(0, 2, 0, 0, 0, 0, 0, 0, 0, 0);", "pooling fields set with pool stride 0"),
    "padding": ("cfg(2, 2, 2, 0, 0, 4, 2, 2, 4, 4);", "not below the pool size"),
    "pitch": ("cfg(2, 2, 0, 0, 3, 4, 2, 2, 4, 4);", "pool pitch 3 < 4"),
    "out_dim": ("cfg(2, 2, 0, 0, 0, 1, 2, 2, 4, 4);", "pool_out_dim 1 < 2"),
    "past_tile": ("cfg(2, 2, 0, 0, 0, 4, 3, 2, 4, 4);", "reach past"),
    "empty_tile": ("cfg(2, 2, 0, 0, 0, 4, 2, 2, 0, 4);", "pooling 0x4"),
    "mvout_rows": ("ok(); gemmini_mvout(buf, GEMMINI_ACC_ADDR(0), GEMMINI_DIM, 1);", "must be 0"),
    "mvout_scratchpad": ("ok(); gemmini_mvout(buf, 0, GEMMINI_DIM, 0);", "pooling reads"),
    "mvout_full_row": ("ok(); gemmini_mvout(buf, GEMMINI_ACC_ADDR(0) | GEMMINI_FULL_ROW, GEMMINI_DIM, 0);",
                       "pooling reads"),
    "mvout_cols": ("ok(); gemmini_mvout(buf, GEMMINI_ACC_ADDR(0), GEMMINI_DIM + 1, 0);", "columns with pooling"),
    "mvout_range": ("ok(); gemmini_mvout(buf, GEMMINI_ACC_ADDR(GEMMINI_ACC_ROWS - 8), GEMMINI_DIM, 0);",
                    "outside the accumulator"),
    # the header: a pooling Gemmini cannot fuse, a tiling past the config's 8-bit fields
    "conv_pool_size_4": ("conv(4, 2, 0, NULL);", "rows x"),
    "conv_pool_pad_2_size_2": ("conv(2, 2, 2, NULL);", "rows x"),
    "conv_tiling_too_wide": ("conv(2, 2, 0, &wide);", "rows x"),
}
TRAP_PROGRAM = HEADER + """
static int8_t buf[1024], x[8 * 8 * 4], w[3 * 3 * 4 * 4];
static const gemmini_conv_tiling wide = {1, 256, 1, 1};
#define cfg(...) gemmini_config_st_pool(GEMMINI_DIM, GEMMINI_NO_ACT, 1.0f, __VA_ARGS__)
static void ok(void) { cfg(%s); }
static void conv(size_t size, size_t stride, size_t pad, const gemmini_conv_tiling *t) {
  tiled_conv_ex(1, 8, 8, 4, 4, 4, 4, 8, 8, 1, 1, 3, 3, size, stride, pad, x, w, NULL, buf, 1.0f, 0, t);
}
int main(void) {
  (void)ok, (void)conv, (void)wide;
  %s
  return 0;
}
"""


@pytest.mark.parametrize("case", list(POOL_TRAPS))
def test_bad_pooling_traps(rig: Rig, case: str) -> None:
    snippet, message = POOL_TRAPS[case]
    src = rig.workdir / f"pool_trap_{case}.c"
    src.write_text(TRAP_PROGRAM % (", ".join(map(str, VALID)), snippet))
    elf = rig.build(f"pool_trap_{case}", src)
    run = rig.run(elf)
    with pytest.raises(GuestError) as info:
        check_exit(run.returncode, run.console, elf)
    assert "(mcause 2)" in info.value.message, info.value.message
    assert "gemmini: illegal command" in run.stderr and message in run.stderr, run.stderr


def test_valid_pooling_config_runs(rig: Rig) -> None:
    """The base config of the trap cases is itself accepted, and so is its mvout."""
    run = rig.run_source("pool_ok", TRAP_PROGRAM % (", ".join(map(str, VALID)),
                                                    "ok(); gemmini_mvout(buf, GEMMINI_ACC_ADDR(0), GEMMINI_DIM, 0);"),
                         "")
    assert run.stats["dma_bytes_written"] == VALID[6] * VALID[7] * rig.dim


# ---------------------------------------------------------------- the tiling as a pure function

# batch, in_h, in_w, in_c, out_c, out_h, out_w, stride, pad, kh, kw, pool_size, pool_stride, pool_pad
SHAPES = [
    (1, 56, 56, 64, 64, 56, 56, 1, 1, 3, 3, 3, 2, 1),
    (1, 56, 56, 64, 64, 56, 56, 1, 1, 3, 3, 0, 0, 0),
    (2, 23, 21, 3, 18, 12, 11, 2, 1, 3, 3, 3, 2, 0),
    (1, 224, 224, 3, 64, 112, 112, 2, 3, 7, 7, 3, 2, 1),
    (1, 300, 300, 3, 8, 300, 300, 1, 1, 3, 3, 2, 2, 0),  # pooled rows 150 wide, conv rows 300: narrow tiles
    (1, 600, 600, 3, 8, 600, 600, 1, 1, 3, 3, 2, 2, 0),  # pooled width 300 > 255: one pooled row per tile
    (1, 8, 8, 4, 4, 8, 8, 1, 1, 3, 3, 4, 2, 0),  # pool size 4: not fusable
    (1, 8, 8, 4, 4, 8, 8, 1, 1, 3, 3, 2, 2, 2),  # pool padding not below the size
    (1, 8, 8, 4, 4, 8, 8, 1, 1, 3, 3, 2, 0, 0),  # pool stride 0
    (1, 64, 64, 4, 4, 1, 1, 1, 0, 64, 64, 0, 0, 0),  # the weights of one block do not fit
]
TILING_PROGRAM = """
static const size_t shapes[][14] = {%s};
#define N (sizeof shapes / sizeof shapes[0])
static void choose(uint64_t out[N][8]) {
  for (size_t i = 0; i < N; i++) {
    const size_t *s = shapes[i];
    gemmini_conv_tiling t = {0, 0, 0, 0, 0, 0, {0, 0, 0, 0, 0, 0}};
    out[i][0] = (uint64_t)gemmini_conv_choose_tiling(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7], s[8], s[9],
                                                     s[10], s[11], s[12], s[13], &t);
    out[i][1] = t.th, out[i][2] = t.tw, out[i][3] = t.tj, out[i][4] = t.tk, out[i][5] = t.dataflow;
    out[i][6] = t.hw_loop, out[i][7] = t.pack;
  }
}
"""


def test_choose_tiling_is_pure_c(rig: Rig) -> None:
    """gemmini_conv_choose_tiling compiled for the host (the compiler's TilingProbe) gives the
    guest's answers; unfusable pools and shapes that fit nothing give 0 (the layer stays on the CPU)."""
    table = TILING_PROGRAM % ", ".join("{" + ", ".join(map(str, s)) + "}" for s in SHAPES)
    guest = rig.run_source("choose_tiling", HEADER + table + "__attribute__((section(\".tvmx_outputs\"), aligned(64))) "
                           "uint64_t out_tilings[N][8];\nint main(void) { choose(out_tilings); return 0; }\n", "")
    got = guest.array("out_tilings", np.uint64, (len(SHAPES), 8)).astype(np.int64)
    probe = TilingProbe(rig.gemmini, rig.executor, cache_dir=rig.workdir / "tiling-cache")
    for shape, row in zip(SHAPES, got, strict=True):
        tiling = probe.conv(ConvShape(*shape))
        assert (astuple(tiling) if tiling else None) == (tuple(row[1:]) if row[0] else None), shape
    assert got[:6, 0].all() and not got[6:, 0].any(), got.tolist()
    for (*_, out_w, _s, _p, _kh, _kw, size, stride, pad), (_, th, tw, _tj, _tk, flow, *_rest) in zip(
            SHAPES[:6], got[:6], strict=True):
        assert flow == 1  # explicit: WS, this configuration's default
        pw = (out_w + 2 * pad - size) // stride + 1 if size else out_w
        assert 1 <= tw <= pw and th >= 1
        if size and pw > 255:
            assert th == 1

