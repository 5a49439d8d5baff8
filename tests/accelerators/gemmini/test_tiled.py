"""The header's tiled kernels (tiled_matmul_auto, tiled_matmul with a forced tiling, tiled_conv_auto)
on the Spike model, against numpy, for DIM 16 and DIM 8: ragged sizes, strides, bias modes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from .conftest import GuestRun, Rig, c_array
from .test_instructions import rne_sat

pytestmark = [pytest.mark.toolchain, pytest.mark.spike]


@dataclass(frozen=True)
class Mm:
    name: str
    m: int
    n: int
    k: int
    bias: str  # "none", "row" (broadcast per column, stride_D 0) or "full"
    act: int
    c_int32: bool
    acc_scale: float = 1.0
    a_scale: float = 1.0
    b_scale: float = 1.0
    pad: tuple[int, int, int] = (0, 0, 0)  # extra row-stride elements of A, B, C
    tiling: tuple[int, int, int] | None = None


MATMULS = [
    Mm("ragged_relu_rowbias", 37, 45, 70, "row", 1, False, acc_scale=1 / 64),
    Mm("square_int32", 64, 64, 64, "none", 0, True),
    Mm("wide_fullbias", 16, 200, 33, "full", 0, False, acc_scale=0.01),
    Mm("strided", 20, 24, 40, "row", 0, False, acc_scale=1 / 32, pad=(8, 8, 6)),
    Mm("tiny_tiles", 50, 50, 50, "full", 0, True, tiling=(1, 1, 1)),
    Mm("narrow_tiles", 40, 100, 70, "row", 1, False, acc_scale=1 / 128, tiling=(2, 1, 2)),
    Mm("mvin_scales", 24, 24, 24, "none", 0, True, a_scale=0.5, b_scale=2.0),
    Mm("one_element", 1, 1, 1, "row", 1, False, acc_scale=0.5),
]
CONV: dict[str, int] = {"n": 1, "h": 9, "w": 9, "c": 5, "oc": 7, "k": 3, "stride": 2, "pad": 1}
CONV_SCALE = 1 / 32


def cfloat(x: float) -> str:
    """A C float literal that rounds to the same float32 as numpy's np.float32(x)."""
    return f"{float(np.float32(x))!r}f"


def matmul_reference(a: np.ndarray, b: np.ndarray, d: np.ndarray | None, *, a_scale: float, b_scale: float,
                     acc_scale: float, act: int, c_int32: bool) -> np.ndarray:
    """tiled_matmul's numerics: mvin-scaled int8 operands, int32 accumulation seeded with the bias D
    (None: no bias), then int32 out, or requantized to int8; ReLU where act."""
    acc = rne_sat(a, a_scale, -128, 127) @ rne_sat(b, b_scale, -128, 127)
    if d is not None:
        acc = acc + d
    ref = acc if c_int32 else rne_sat(acc, acc_scale, -128, 127)
    out: np.ndarray = np.maximum(ref, 0) if act else ref
    return out


def conv_reference(x: np.ndarray, w: np.ndarray, bias: np.ndarray) -> np.ndarray:
    n, h, wd, c = x.shape
    k, s, p = CONV["k"], CONV["stride"], CONV["pad"]
    oh, ow = (h + 2 * p - k) // s + 1, (wd + 2 * p - k) // s + 1
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
    cols = np.stack([xp[:, oy * s:oy * s + k, ox * s:ox * s + k, :].reshape(n, -1)
                     for oy in range(oh) for ox in range(ow)], axis=1)  # n, oh*ow, k*k*c
    acc = cols @ w.reshape(k * k * c, -1) + bias
    out: np.ndarray = np.maximum(rne_sat(acc, CONV_SCALE, -128, 127), 0).reshape(n, oh, ow, -1)
    return out


def build_program(rng: np.random.Generator) -> tuple[str, str, dict[str, np.ndarray]]:
    data, body, want = [], [], {}
    for i, mm in enumerate(MATMULS):
        sa, sb, sc = mm.k + mm.pad[0], mm.n + mm.pad[1], mm.n + mm.pad[2]
        a = rng.integers(-128, 128, (mm.m, sa))
        b = rng.integers(-128, 128, (mm.k, sb))
        d = rng.integers(-50000, 50000, (1 if mm.bias == "row" else mm.m, mm.n))
        data += [c_array(f"A{i}", a, "int8_t"), c_array(f"B{i}", b, "int8_t"), c_array(f"D{i}", d, "int32_t")]
        ctype = "int32_t" if mm.c_int32 else "int8_t"
        body.append(f"__attribute__((section(\".tvmx_outputs\"), aligned(64))) {ctype} out_{mm.name}[{mm.m * sc}];")
        dptr, sd = ("NULL", 0) if mm.bias == "none" else (f"&D{i}[0][0]", 0 if mm.bias == "row" else mm.n)
        want[f"out_{mm.name}"] = matmul_reference(a[:, :mm.k], b[:, :mm.n], None if mm.bias == "none" else d,
                                                  a_scale=mm.a_scale, b_scale=mm.b_scale, acc_scale=mm.acc_scale,
                                                  act=mm.act, c_int32=mm.c_int32)
        args = (f"{mm.m}, {mm.n}, {mm.k}, &A{i}[0][0], &B{i}[0][0], {dptr}, out_{mm.name}, {sa}, {sb}, {sd}, {sc}, "
                f"{cfloat(mm.a_scale)}, {cfloat(mm.b_scale)}, {cfloat(mm.acc_scale)}, {mm.act}, {int(mm.c_int32)}")
        call = (f"tiled_matmul({args}, (gemmini_tiling){{{', '.join(map(str, mm.tiling))}}});" if mm.tiling
                else f"tiled_matmul_auto({args});")
        body.append(f"static void run_{i}(void) {{ {call} }}")
    cv = CONV
    x = rng.integers(-128, 128, (cv["n"], cv["h"], cv["w"], cv["c"]))
    w = rng.integers(-128, 128, (cv["k"], cv["k"], cv["c"], cv["oc"]))
    bias = rng.integers(-3000, 3000, (cv["oc"],))
    ref = conv_reference(x, w, bias)
    _, oh, ow, _ = ref.shape
    want["out_conv"] = ref
    data += [c_array("CX", x, "int8_t"), c_array("CW", w, "int8_t"), c_array("CB", bias, "int32_t")]
    body.append(f"__attribute__((section(\".tvmx_outputs\"), aligned(64))) int8_t out_conv[{ref.size}];")
    body.append(f"static int8_t conv_col[{oh * ow * cv['k'] * cv['k'] * cv['c']}];")
    calls = " ".join(f"run_{i}();" for i in range(len(MATMULS)))
    body.append(
        "int main(void) { " + calls +
        f" tiled_conv_auto({cv['n']}, {cv['h']}, {cv['w']}, {cv['c']}, {cv['oc']}, {oh}, {ow}, {cv['stride']}, "
        f"{cv['pad']}, {cv['k']}, {cv['k']}, &CX[0][0][0][0], &CW[0][0][0][0], CB, out_conv, conv_col, "
        f"{cfloat(CONV_SCALE)}, 1); return 0; }}")
    source = "#include <stddef.h>\n#include <stdint.h>\n#include \"gemmini.h\"\n#include \"case_data.h\"\n"
    return "".join(data), source + "\n".join(body) + "\n", want


@pytest.fixture(scope="session")
def tiled_run(rig: Rig) -> tuple[GuestRun, dict[str, np.ndarray]]:
    data, source, want = build_program(np.random.default_rng(7 + rig.dim))
    return rig.run_source("tiled", source, data), want


@pytest.mark.parametrize("case", [*(m.name for m in MATMULS), "conv"])
def test_tiled_kernel(tiled_run: tuple[GuestRun, dict[str, np.ndarray]], case: str) -> None:
    run, want = tiled_run
    mm = next((m for m in MATMULS if m.name == case), None)
    ref = want[f"out_{case}"]
    if mm is None:
        got = run.array("out_conv", np.int8, ref.shape).astype(np.int64)
    else:
        sc = mm.n + mm.pad[2]
        full = run.array(f"out_{case}", np.int32 if mm.c_int32 else np.int8, (mm.m, sc)).astype(np.int64)
        assert not full[:, mm.n:].any(), "wrote outside C's columns"
        got = full[:, :mm.n]
    bad = np.argwhere(got != ref)
    assert bad.size == 0, f"{case}: {len(bad)}/{ref.size} differ; first {tuple(bad[0])}: " \
        f"got {got[tuple(bad[0])]} want {ref[tuple(bad[0])]}"
