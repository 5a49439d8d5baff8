"""The header's implicit-GEMM convolution (tiled_conv_auto, tiled_conv with forced tilings) on the
Spike model against a numpy reference, element by element, for DIM 16 and DIM 8: channel counts
that are not multiples of DIM, strides 1 and 2, padding 0-3, kernels 1x1 to 7x7 (and rectangular),
rows wider than DIM, batches, bias or not, ReLU or not, saturating scales, tilings that split
rows, columns, output and input channels, and the same convs run by im2col + tiled_matmul."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from .conftest import GuestRun, Rig, c_array
from .test_instructions import rne_sat
from .test_tiled import cfloat

pytestmark = [pytest.mark.toolchain, pytest.mark.spike]

GUARD = 64  # bytes after each output that must stay untouched


@dataclass(frozen=True)
class Conv:
    name: str
    n: int
    h: int
    w: int
    c: int
    oc: int
    kh: int
    kw: int
    stride: int
    pad: int
    bias: bool
    relu: bool
    scale: float
    tiling: tuple[int, int, int, int] | None = None  # th, tw, tj, tk for tiled_conv
    pack: bool = False  # the tiling packs the kernel-row taps into channels (tk counts packed blocks)
    im2col: bool = False  # also run by im2col + tiled_matmul (a tiling with th = 0) on the same data

    @property
    def out_hw(self) -> tuple[int, int]:
        return ((self.h + 2 * self.pad - self.kh) // self.stride + 1,
                (self.w + 2 * self.pad - self.kw) // self.stride + 1)


CONVS = [
    Conv("rgb_3x3_s1_p1", 1, 20, 20, 3, 16, 3, 3, 1, 1, True, True, 1 / 64),
    Conv("c5_5x5_s2_p2_batch2", 2, 13, 11, 5, 7, 5, 5, 2, 2, False, False, 1 / 8),
    Conv("c20_3x3_s2_p0", 1, 17, 19, 20, 33, 3, 3, 2, 0, True, True, 1 / 128),
    Conv("c16_1x1_matmul_batch2", 2, 6, 7, 16, 24, 1, 1, 1, 0, True, False, 1 / 32),
    Conv("c20_1x1_s2", 1, 9, 12, 20, 10, 1, 1, 2, 0, False, True, 1 / 16),
    Conv("c5_7x7_s2_p3", 1, 23, 23, 5, 18, 7, 7, 2, 3, True, False, 1 / 64),
    Conv("c40_3x3_s1_p2", 1, 9, 10, 40, 20, 3, 3, 1, 2, False, True, 1 / 256),
    Conv("wide_rows", 1, 5, 40, 3, 8, 3, 3, 1, 1, True, True, 1 / 16),
    Conv("c3_3x3_s2_p1_batch2", 2, 9, 9, 3, 5, 3, 3, 2, 1, True, True, 1 / 32, im2col=True),
    Conv("c5_1x1_p1", 1, 5, 6, 5, 9, 1, 1, 1, 1, True, False, 1 / 8),
    Conv("rect_3x5", 1, 8, 9, 7, 6, 3, 5, 1, 1, True, False, 1 / 32),
    Conv("tiny_map_3x3", 1, 3, 3, 24, 17, 3, 3, 1, 1, True, True, 1 / 64),
    Conv("bench_32x32x16_to_32", 1, 32, 32, 16, 32, 3, 3, 1, 1, True, True, 1 / 128),
    # squeezenet's fire expand at 64x64: at DIM 8 the whole map fits one tile but not two (regression)
    Conv("fire_expand_15x15", 1, 15, 15, 16, 64, 3, 3, 1, 1, True, True, 1 / 256),
    # forced tilings: several row/column tiles, output-channel tiles, K split across chunks
    Conv("split_all_s1", 2, 11, 21, 40, 40, 3, 3, 1, 1, True, True, 1 / 256, tiling=(3, 7, 1, 1)),
    Conv("split_all_s2_5x5", 1, 15, 17, 50, 35, 5, 5, 2, 2, False, False, 1 / 128, tiling=(2, 4, 2, 2)),
    Conv("split_rows_only", 1, 12, 12, 3, 20, 3, 3, 1, 1, True, False, 1 / 32, tiling=(1, 12, 2, 1)),
    # taps packed into channels: 7 x 3 = 21 channels (2 blocks at DIM 16) instead of 7 blocks per
    # kernel row; the image's edge windows read the padded copy's zeros
    Conv("stem_7x7_s2_p3_packed", 1, 30, 26, 3, 20, 7, 7, 2, 3, True, True, 1 / 256, tiling=(5, 13, 2, 2),
         pack=True),
    # packed blocks split across chunks (tk 1), batches, a channel count that does not pack evenly
    Conv("c5_5x5_s1_p2_packed_batch2", 2, 9, 11, 5, 18, 5, 5, 1, 2, False, False, 1 / 128, tiling=(3, 6, 1, 1),
         pack=True),
    # by im2col too: a narrow map (ResNet's last stage; the word-wise copy), a strided 1x1
    # projection, and channels that are no multiple of 8 (the byte-wise copy), batch 2
    Conv("narrow_3x3", 1, 7, 7, 64, 40, 3, 3, 1, 1, True, True, 1 / 512, im2col=True),
    Conv("c32_1x1_s2", 1, 14, 13, 32, 24, 1, 1, 2, 0, True, False, 1 / 64, im2col=True),
    Conv("c5_3x3_s2_batch2", 2, 5, 6, 5, 9, 3, 3, 2, 1, False, True, 1 / 16, im2col=True),
]


def conv_reference(cv: Conv, x: np.ndarray, w: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
    oh, ow, s = *cv.out_hw, cv.stride
    xp = np.pad(x, ((0, 0), (cv.pad, cv.pad), (cv.pad, cv.pad), (0, 0)))
    acc = np.zeros((cv.n, oh, ow, cv.oc), np.int64)
    for ky in range(cv.kh):
        for kx in range(cv.kw):
            acc += xp[:, ky:ky + s * (oh - 1) + 1:s, kx:kx + s * (ow - 1) + 1:s, :] @ w[ky, kx]
    if bias is not None:
        acc += bias
    out = rne_sat(acc, cv.scale, -128, 127)
    return np.maximum(out, 0) if cv.relu else out


def build_program(rng: np.random.Generator) -> tuple[str, str, dict[str, np.ndarray]]:
    data, body, calls, want = [], [], [], {}
    for i, cv in enumerate(CONVS):
        oh, ow = cv.out_hw
        x = rng.integers(-128, 128, (cv.n, cv.h, cv.w, cv.c))
        w = rng.integers(-128, 128, (cv.kh, cv.kw, cv.c, cv.oc))
        b = rng.integers(-60000, 60000, (cv.oc,)) if cv.bias else None
        ref = conv_reference(cv, x, w, b)
        want[cv.name] = ref
        data += [c_array(f"X{i}", x, "int8_t"), c_array(f"W{i}", w, "int8_t")]
        if b is not None:
            data.append(c_array(f"B{i}", b, "int32_t"))
        size = ref.size + GUARD
        body.append(f"__attribute__((section(\".tvmx_outputs\"), aligned(64))) int8_t out_{cv.name}[{size}];")
        geo = (f"{cv.n}, {cv.h}, {cv.w}, {cv.c}, {cv.oc}, {oh}, {ow}, {cv.stride}, {cv.pad}, {cv.kh}, {cv.kw}, "
               f"&X{i}[0][0][0][0], &W{i}[0][0][0][0], {f'B{i}' if cv.bias else 'NULL'}")
        tail = f"{cfloat(cv.scale)}, {int(cv.relu)}"
        if cv.tiling:
            fields = ", ".join(f".{f} = {v}" for f, v in zip(("th", "tw", "tj", "tk"), cv.tiling, strict=True))
            body.append(f"static const gemmini_conv_tiling T{i} = {{{fields}, .pack = {int(cv.pack)}}};")
            calls.append(f"tiled_conv({geo}, out_{cv.name}, {tail}, &T{i});")
        else:
            calls.append(f"tiled_conv_auto({geo}, out_{cv.name}, NULL, {tail});")
        if cv.im2col:
            want[f"im2col_{cv.name}"] = ref
            body.append(f"__attribute__((section(\".tvmx_outputs\"), aligned(64))) int8_t "
                        f"out_im2col_{cv.name}[{size}];")
            m, k = cv.n * oh * ow, cv.kh * cv.kw * cv.c
            calls.append(f"{{ gemmini_conv_tiling t = {{0}}; t.matmul = gemmini_auto_tiling({m}, {cv.oc}, {k}); "
                         f"tiled_conv({geo}, out_im2col_{cv.name}, {tail}, &t); }}")
    body.append("int main(void) { " + " ".join(calls) + " return 0; }")
    source = "#include <stddef.h>\n#include <stdint.h>\n#include \"gemmini.h\"\n#include \"case_data.h\"\n"
    return "".join(data), source + "\n".join(body) + "\n", want


@pytest.fixture(scope="session")
def conv_run(rig: Rig) -> tuple[GuestRun, dict[str, np.ndarray]]:
    data, source, want = build_program(np.random.default_rng(11 + rig.dim))
    return rig.run_source("conv", source, data, timeout=300), want


@pytest.mark.parametrize("case", [cv.name for cv in CONVS] + [f"im2col_{cv.name}" for cv in CONVS if cv.im2col])
def test_conv(conv_run: tuple[GuestRun, dict[str, np.ndarray]], case: str) -> None:
    run, want = conv_run
    ref = want[case]
    full = run.array(f"out_{case}", np.int8, (ref.size + GUARD,)).astype(np.int64)
    assert not full[ref.size:].any(), "wrote past the output"
    got = full[:ref.size].reshape(ref.shape)
    bad = np.argwhere(got != ref)
    assert bad.size == 0, f"{case}: {len(bad)}/{ref.size} differ; first {tuple(bad[0])}: " \
        f"got {got[tuple(bad[0])]} want {ref[tuple(bad[0])]}"


def test_conv_cases_cover_the_brief() -> None:
    """The case list keeps covering what it claims (not a simulator test)."""
    assert {cv.c % 16 != 0 for cv in CONVS} == {True, False}
    assert any(cv.oc % 16 for cv in CONVS) and {cv.stride for cv in CONVS} >= {1, 2}
    assert {cv.pad for cv in CONVS} >= {0, 1, 2, 3} and {cv.kh for cv in CONVS} >= {1, 3, 5, 7}
    assert any(cv.out_hw[1] > 16 for cv in CONVS) and any(cv.n == 2 for cv in CONVS)
    assert {cv.bias for cv in CONVS} == {True, False} and {cv.relu for cv in CONVS} == {True, False}


def test_conv_saturates(conv_run: tuple[GuestRun, dict[str, np.ndarray]]) -> None:
    """The references hit both int8 limits, so saturation in mvout is exercised."""
    _, want = conv_run
    assert any((ref == 127).any() for ref in want.values())
    assert any((ref == -128).any() for ref in want.values())
