"""Gemmini's tuning space (Gemmini.tuning_space): the default first and exactly schedule_kernel's,
distinct, bounded, deterministic, every candidate accepted by the header's own checks; and a sample
of the candidates of several matmul and conv shapes (ragged, strided and padded, pooled, grouped,
1x1 as a matmul) run on the Spike model through the generated C glue (tvmx_tiled_*: the call
arguments exactly as the compiler appends them), each bit-identical to the default and to numpy,
none trapping, for DIM 16 and DIM 8."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pytest

from tvmx.accelerators import KernelSchedule, accelerator_for
from tvmx.accelerators.gemmini import Gemmini
from tvmx.accelerators.gemmini_tiling import (
    CONV_FIELDS,
    FLOW_OS,
    FLOW_WS,
    LOOKAHEADS,
    MM_FIELDS,
    SPACE_LIMIT,
    ConvShape,
    ConvTiling,
    MatmulTiling,
    probe_for,
)
from tvmx.simulator.guest import check_exit
from tvmx.target import load_target
from tvmx.toolchain.command import Executor

from .conftest import GuestRun, Rig, c_array
from .test_conv_pool import Case, reference, weights
from .test_instructions import rne_sat
from .test_tiled import cfloat

OUT = '__attribute__((section(".tvmx_outputs"), aligned(64)))'
SAMPLE = 10  # candidates run per shape, the default included
FUNCTIONS = {"matmul": "tiled_matmul", "conv2d": "tiled_conv_grouped", "add": "tiled_resadd_auto"}


def gemmini(name: str) -> Gemmini:
    acc = accelerator_for(load_target(name))
    assert isinstance(acc, Gemmini)
    return acc


@dataclass(frozen=True)
class Mm:
    name: str
    m: int
    n: int
    k: int
    relu: bool = False

    @property
    def sizes(self) -> dict[str, int]:
        return {"M": self.m, "N": self.n, "K": self.k}

    @property
    def scale(self) -> float:
        return 2.0 ** -round(math.log2(math.sqrt(self.k) * 128 * 128 / 3 / 64))


MATMULS = [Mm("mm_ragged", 100, 72, 200, relu=True), Mm("mm_one_row", 1, 130, 300), Mm("mm_tall", 300, 40, 96),
           Mm("mm_square", 128, 128, 128)]
CONVS = [
    Case("conv3x3_ragged", 1, 20, 18, 24, 40, (3, 3), 1, 1, None),
    Case("conv5x5_s2_p2", 2, 15, 17, 10, 20, (5, 5), 2, 2, None, relu=False),
    Case("conv3x3_pool3_s2_p1", 1, 21, 19, 12, 24, (3, 3), 1, 1, (3, 2, 1)),
    Case("depthwise_s2", 1, 17, 17, 16, 16, (3, 3), 2, 1, None, groups=3, depthwise=True),
    # an RGB stem: its default and candidates pack the kernel-row taps into channels
    Case("rgb7x7_s2_p3_pool_packed", 1, 30, 30, 3, 20, (7, 7), 2, 3, (3, 2, 1)),
    Case("conv1x1_matmul", 2, 7, 9, 40, 24, (1, 1), 1, 0, None, relu=False),
]


def conv_sizes(cv: Case) -> dict[str, int]:
    """The conv's call sizes, as kernels.call_sizes gives them (per super-group channels)."""
    (oh, ow), (psz, pst, ppad) = cv.conv_hw, cv.pool or (0, 0, 0)
    return {"batch": cv.n, "in_h": cv.h, "in_w": cv.w, "groups": max(cv.groups, 1), "in_c": cv.c, "out_c": cv.oc,
            "out_h": oh, "out_w": ow, "stride": cv.stride, "pad": cv.pad, "kh": cv.k[0], "kw": cv.k[1],
            "pool_size": psz, "pool_stride": pst, "pool_pad": ppad}


def space_of(g: Gemmini, op: str, sizes: dict[str, int]) -> list[KernelSchedule]:
    return g.tuning_space(op, sizes, "k", Executor())


# ---------------------------------------------------------------- the space itself

SHAPES = [("matmul", mm.sizes) for mm in MATMULS] + [("matmul", {"M": 512, "N": 512, "K": 512})] + \
    [("conv2d", conv_sizes(cv)) for cv in CONVS] + \
    [("conv2d", conv_sizes(Case("big_pool", 1, 224, 224, 3, 64, (7, 7), 2, 3, (3, 2, 1))))]


@pytest.mark.parametrize("target", ["gemmini", "gemmini-8"])
@pytest.mark.parametrize(("op", "sizes"), SHAPES)
def test_space_is_default_first_distinct_bounded_legal(target: str, op: str, sizes: dict[str, int]) -> None:
    g = gemmini(target)
    space = space_of(g, op, sizes)
    assert space[0] == g.schedule_kernel(op, sizes, "k", Executor())
    assert len({s.args for s in space}) == len(space) and 1 < len(space) <= SPACE_LIMIT
    assert space == space_of(g, op, sizes)  # deterministic
    probe, dim = probe_for(g, Executor()), g.config.dim
    shape = ConvShape.from_sizes(sizes) if op == "conv2d" else None
    m, n, k = shape.as_matmul() if shape else (sizes["M"], sizes["N"], sizes["K"])

    def as_matmul(s: KernelSchedule) -> bool:  # a matmul, a 1x1 conv as one, or a conv by im2col
        return op == "matmul" or s.args[:CONV_FIELDS] == (0,) * CONV_FIELDS

    for s in space:
        assert list(s.detail["tiling"].values()) == list(s.args)  # schedules.json records what the call gets
        if as_matmul(s):
            assert op == "matmul" or probe.conv_is_matmul(shape) or probe.conv_im2col_fits(shape)
            t = MatmulTiling(*s.args[-MM_FIELDS:])
            assert op == "matmul" or s.args[:CONV_FIELDS] == (0,) * CONV_FIELDS  # conv part unused: a matmul
            assert probe.matmul_ok(t) and t.dataflow in (FLOW_WS, FLOW_OS)
            assert s.detail["uses"]["scratchpad_rows"] <= s.detail["capacity"]["scratchpad_rows"]
            assert t.lookahead in LOOKAHEADS
            if s is not space[0]:  # within the matrices (the header's greedy default may overshoot)
                assert t.i <= -(-m // dim) and t.j <= -(-n // dim) and t.k <= -(-k // dim)
        else:
            assert shape is not None
            c = ConvTiling(*s.args[:CONV_FIELDS])
            assert s.args[CONV_FIELDS:] == (0,) * MM_FIELDS and probe.conv_cost(shape, c) is not None
        assert ("WS" in s.summary) != ("OS" in s.summary)
    flows = {MatmulTiling(*s.args[-MM_FIELDS:]).dataflow if as_matmul(s) else s.args[4] for s in space}
    assert flows == {FLOW_WS, FLOW_OS}  # both dataflows of these targets are offered


def test_stem_convs_pack_their_taps() -> None:
    """ResNet's 7x7 RGB stem: packing a kernel row's taps into channels needs 2 channel blocks per
    kernel row instead of 7 (21 channels, DIM 16); the default packs, the space offers packed
    tilings on both paths (LOOP_CONV_WS reads the overlapping pixels with a stride under their
    channel count), and a 64-channel conv, whose blocks are full already, does not pack."""
    g, stem = gemmini("gemmini"), conv_sizes(Case("stem", 1, 224, 224, 3, 64, (7, 7), 2, 3, (3, 2, 1)))
    probe = probe_for(g, Executor())
    assert probe.conv_packed_blocks(ConvShape.from_sizes(stem)) == 2
    assert g.schedule_kernel("conv2d", stem, "k", Executor()).detail["tiling"]["pack"] == 1
    packed = [ConvTiling(*s.args[:CONV_FIELDS]) for s in space_of(g, "conv2d", stem)]
    packed = [t for t in packed if t.pack]
    assert {t.hw_loop for t in packed} == {0, 1} and all(t.tk <= 2 for t in packed)
    wide = conv_sizes(Case("wide", 1, 56, 56, 64, 64, (3, 3), 1, 1, None))
    assert probe.conv_packed_blocks(ConvShape.from_sizes(wide)) == 0
    assert g.schedule_kernel("conv2d", wide, "k", Executor()).detail["tiling"]["pack"] == 0


def test_narrow_convs_run_by_im2col_and_the_tuner_has_both_ways() -> None:
    """ResNet's last stage (3x3 over 7 x 7 x 512): the conv path fills 7 of 16 array rows, im2col +
    matmul 49 of 64, so the default is im2col; its space offers both ways, alternating. A wide map
    (56 x 56) keeps the conv path, and its input matrix would not fit the pack buffer anyway."""
    g = gemmini("gemmini")
    probe = probe_for(g, Executor())
    narrow = conv_sizes(Case("narrow", 1, 7, 7, 512, 512, (3, 3), 1, 1, None))
    assert probe.conv_prefers_im2col(ConvShape.from_sizes(narrow))
    default = g.schedule_kernel("conv2d", narrow, "k", Executor())
    assert default.args[:CONV_FIELDS] == (0,) * CONV_FIELDS and "im2col" in default.summary
    kinds = [s.args[:CONV_FIELDS] == (0,) * CONV_FIELDS for s in space_of(g, "conv2d", narrow)[1:9]]
    assert True in kinds and False in kinds
    wide = ConvShape.from_sizes(conv_sizes(Case("wide", 1, 56, 56, 64, 64, (3, 3), 1, 1, None)))
    assert not probe.conv_im2col_fits(wide) and not probe.conv_prefers_im2col(wide)


def test_big_spaces_are_spread_over_the_estimates() -> None:
    """512^3 at DIM 16 has thousands of legal tilings: the list keeps the best estimates and samples
    the rest, so it still reaches small tiles."""
    space = space_of(gemmini("gemmini"), "matmul", {"M": 512, "N": 512, "K": 512})
    assert len(space) == SPACE_LIMIT
    assert min(s.args[0] * s.args[1] for s in space) == 1 and max(s.args[2] for s in space) == 32
    assert {s.args[4] for s in space} == set(LOOKAHEADS)


def test_single_dataflow_targets_offer_only_theirs() -> None:
    g = accelerator_for(load_target("tests/data/targets/gemmini-os.yaml"))
    assert isinstance(g, Gemmini) and g.flows == (FLOW_OS,)
    for op, sizes in SHAPES[:2] + SHAPES[5:7]:
        space = space_of(g, op, sizes)
        dataflows = {s.detail["tiling"].get("dataflow") for s in space} | \
            {s.detail["tiling"].get("mm_dataflow") for s in space}
        assert dataflows - {0, None} == {FLOW_OS}, (op, dataflows)


def test_add_has_only_its_default() -> None:
    g = gemmini("gemmini")
    assert space_of(g, "add", {"n": 1000}) == [g.schedule_kernel("add", {"n": 1000}, "k", Executor())]


# ---------------------------------------------------------------- candidates on the simulator

def sample(space: list[KernelSchedule], n: int = SAMPLE) -> list[KernelSchedule]:
    """The default, the first few, an even spread over the rest, and the first OS and the first
    non-default lookahead candidates (so every knob is exercised)."""
    picks = {0, 1, 2, *(round(i * (len(space) - 1) / (n - 4)) for i in range(n - 4))}
    for want in ("OS", "lookahead 1"):
        picks |= {next((i for i, s in enumerate(space) if want in s.summary), 0)}
    return [space[i] for i in sorted(picks)]


def program(g: Gemmini, rng: np.random.Generator) -> tuple[str, str, dict[str, np.ndarray], dict[str, int]]:
    """Every sampled candidate of every shape through the glue, outputs out_<shape>_<n>; the
    expected outputs; candidates per shape."""
    data, body, calls, want, counts = [], [], [], {}, {}
    for c, mm in enumerate(MATMULS):
        a, b = rng.integers(-128, 128, (mm.m, mm.k)), rng.integers(-128, 128, (mm.k, mm.n))
        bias = rng.integers(-30000, 30000, (mm.n,))
        data += [c_array(f"MA{c}", a, "int8_t"), c_array(f"MB{c}", b, "int8_t"), c_array(f"MD{c}", bias, "int32_t")]
        ref = rne_sat(a @ b + bias, mm.scale, -128, 127)
        ref = np.maximum(ref, 0) if mm.relu else ref
        cands = sample(space_of(g, "matmul", mm.sizes))
        counts[mm.name] = len(cands)
        for n, s in enumerate(cands):
            body.append(f"{OUT} int8_t out_{mm.name}_{n}[{mm.m * mm.n}];")
            args = ", ".join(f"{v}" for v in s.args)
            calls.append(f"tvmx_tiled_matmul({mm.m}, {mm.n}, {mm.k}, {cfloat(mm.scale)}, {int(mm.relu)}, MA{c}, MB{c}, "
                         f"MD{c}, out_{mm.name}_{n}, {args});")
            want[f"{mm.name}_{n}"] = ref
    for c, cv in enumerate(CONVS):
        x = rng.integers(-128, 128, (cv.n, cv.h, cv.w, cv.in_channels))
        w = weights(cv, rng)
        bias = rng.integers(-60000, 60000, (cv.out_channels,))
        data += [c_array(f"CX{c}", x, "int8_t"), c_array(f"CW{c}", w, "int8_t"), c_array(f"CB{c}", bias, "int32_t")]
        ref = reference(cv, x, w, bias)
        sizes = conv_sizes(cv)
        cands = sample(space_of(g, "conv2d", sizes))
        counts[cv.name] = len(cands)
        for n, s in enumerate(cands):
            body.append(f"{OUT} int8_t out_{cv.name}_{n}[{ref.size}];")
            head = ", ".join(str(v) for v in sizes.values())
            calls.append(f"tvmx_tiled_conv_grouped({head}, {cfloat(cv.scale)}, {int(cv.relu)}, CX{c}, CW{c}, CB{c}, "
                         f"out_{cv.name}_{n}, {', '.join(map(str, s.args))});")
            want[f"{cv.name}_{n}"] = ref
    body.append("int main(void) {\n  " + "\n  ".join(calls) + "\n  return 0;\n}")
    source = "#include \"accel_glue.c\"\n#include \"case_data.h\"\n" + "\n".join(body) + "\n"
    return "".join(data), source, want, counts


@pytest.fixture(scope="session")
def candidates_run(rig: Rig) -> tuple[GuestRun, dict[str, np.ndarray], dict[str, int]]:
    data, source, want, counts = program(rig.gemmini, np.random.default_rng(17 + rig.dim))
    (rig.workdir / "space").mkdir(exist_ok=True)
    (rig.workdir / "space" / "accel_glue.c").write_text(rig.gemmini.glue_c("gemmini.h", FUNCTIONS))
    src = rig.workdir / "space.c"
    src.write_text(source)
    elf = rig.build("space", src, data=data)
    run = rig.run(elf, timeout=600)
    check_exit(run.returncode, run.console, elf)  # no candidate trapped
    return run, want, counts


@pytest.mark.toolchain
@pytest.mark.spike
@pytest.mark.parametrize("case", [mm.name for mm in MATMULS] + [cv.name for cv in CONVS])
def test_sampled_candidates_match_the_default(candidates_run: tuple[GuestRun, dict[str, np.ndarray], dict[str, int]],
                                              case: str) -> None:
    run, want, counts = candidates_run
    assert counts[case] >= 5
    ref = want[f"{case}_0"]
    for n in range(counts[case]):
        got = run.array(f"out_{case}_{n}", np.int8, ref.shape).astype(np.int64)
        bad = np.argwhere(got != ref)
        assert bad.size == 0, f"{case} candidate {n}: {len(bad)}/{ref.size} differ; first {tuple(bad[0])}: " \
            f"got {got[tuple(bad[0])]} want {ref[tuple(bad[0])]}"
