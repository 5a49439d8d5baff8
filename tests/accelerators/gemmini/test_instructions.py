"""Every Gemmini command on the Spike model, element by element against a numpy reference of the
same semantics, for DIM 16 and DIM 8."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tvmx.errors import GuestError
from tvmx.simulator.guest import check_exit

from .conftest import DATA, GuestRun, Rig, c_array

pytestmark = [pytest.mark.toolchain, pytest.mark.spike]

I8, I32 = np.int8, np.int32


def rne_sat(x: np.ndarray, scale: float, lo: int, hi: int) -> np.ndarray:
    """float32 product, round half to even, saturate: the model's scaling."""
    out: np.ndarray = np.clip(np.rint(x.astype(np.float32) * np.float32(scale)), lo, hi).astype(np.int64)
    return out


def shift_rne(x: np.ndarray, s: int) -> np.ndarray:
    q = x >> s
    rem = x - (q << s)
    half = 1 << (s - 1)
    out: np.ndarray = q + ((rem > half) | ((rem == half) & ((q & 1) == 1)))
    return out


def make_inputs(dim: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1234 + dim)
    a1 = rng.integers(-8, 9, (dim, dim))
    b1 = rng.integers(-8, 9, (dim, dim))
    x = rng.integers(-128, 128, (dim, dim))
    x[0, :8] = [1, 3, 5, -1, -3, -5, 127, -128]  # ties at scale 0.5 and saturation at scale 3
    return {
        "A1": a1, "B1": b1, "AT": a1.T.copy(), "BT": b1.T.copy(),
        "A2": rng.integers(-128, 128, (dim, dim)), "B2": rng.integers(-128, 128, (dim, dim)),
        "DSP": rng.integers(-128, 128, (dim, dim)), "X": x,
        "DACC": rng.integers(-100000, 100000, (dim, dim)),
        "BIG": rng.integers(-128, 128, (dim, 2 * dim)),
    }


def expected(v: dict[str, np.ndarray], dim: int) -> dict[str, np.ndarray]:
    a1b1, a1b2, a2b2 = v["A1"] @ v["B1"], v["A1"] @ v["B2"], v["A2"] @ v["B2"]
    partial = a2b2 + v["DSP"]
    i, k, j = dim - 3, dim - 2, dim - 5
    partial[:i, :j] = v["A1"][:i, :k] @ v["B1"][:k, :j]
    strided = np.zeros((dim, dim), dtype=np.int64)
    rows = (dim + 2) // 3
    strided[0:3 * rows:3] = np.vstack([v["A1"], v["A2"]])[0:2 * rows:2] @ v["B1"]
    return {
        "out_scale_half": rne_sat(v["X"], 0.5, -128, 127),
        "out_scale_three": rne_sat(v["X"], 3.0, -128, 127),
        "out_ws_overwrite": a1b1,
        "out_acc_scaled_relu": np.maximum(rne_sat(a1b1, 0.25, -128, 127), 0),
        "out_acc_scaled": rne_sat(a1b1, 0.25, -128, 127),
        "out_ws_accumulate": v["DACC"] + a1b1,
        "out_ws_bias_spad": a2b2 + v["DSP"],
        "out_ws_reuse1": a1b2,
        "out_ws_reuse2": a2b2,
        "out_partial": partial,
        "out_garbage_b": np.zeros((dim, dim), dtype=np.int64),
        "out_garbage_c": v["DACC"],
        "out_ws_b_transpose": a1b1,
        "out_os_acc": v["DSP"] + a1b1 + a2b2,
        "out_os_spad": np.maximum(np.clip(shift_rne(a1b1, 4), -128, 127), 0),
        "out_os_a_transpose": a1b1,
        "out_acc_mvin": rne_sat(v["X"], 2.0, -(2**31), 2**31 - 1) + v["DACC"],
        "out_blocks": v["BIG"],
        "out_strided": strided,
    }


CASES = list(expected(make_inputs(8), 8))


@pytest.fixture(scope="session")
def instructions_run(rig: Rig) -> tuple[Rig, GuestRun, dict[str, np.ndarray]]:
    inputs = make_inputs(rig.dim)
    types = {"DACC": "int32_t"}
    data = "".join(c_array(n, a, types.get(n, "int8_t")) for n, a in inputs.items())
    elf = rig.build("instructions", DATA / "instructions.c", data=data)
    run = rig.run(elf)
    check_exit(run.returncode, run.console, elf)
    return rig, run, expected(inputs, rig.dim)


@pytest.mark.parametrize("case", CASES)
def test_command_semantics(instructions_run: tuple[Rig, GuestRun, dict[str, np.ndarray]], case: str) -> None:
    _, run, want = instructions_run
    ref = want[case]
    dtype = I8 if case in ("out_scale_half", "out_scale_three", "out_acc_scaled_relu", "out_acc_scaled",
                           "out_os_spad", "out_blocks") else I32
    got = run.array(case, dtype, ref.shape).astype(np.int64)
    bad = np.argwhere(got != ref)
    assert bad.size == 0, f"{case}: {len(bad)} elements differ, first at {tuple(bad[0])}: " \
        f"got {got[tuple(bad[0])]}, want {ref[tuple(bad[0])]}"


def test_counters(instructions_run: tuple[Rig, GuestRun, dict[str, Any]]) -> None:
    rig, run, _ = instructions_run
    c = run.array("out_counters", np.uint64, (8,)).astype(np.int64)
    cycles0, cycles1, exec0, exec1, macs0, macs1, stall, commands = c
    timing = dict(rig.gemmini.config.timing)
    assert cycles1 > cycles0
    assert exec1 - exec0 >= 16 * timing["compute_cycles"]  # at least 16 computes ran
    assert macs1 - macs0 > 0 and stall >= 0 and commands > 50
    assert run.stats["commands"] >= commands and run.stats["minstret"] > 0
    assert run.stats["cycles"] >= run.stats["minstret"] + run.stats["stall_cycles"]


def test_model_clock_follows_minstret(instructions_run: tuple[Rig, GuestRun, dict[str, Any]]) -> None:
    _, run, _ = instructions_run
    model, cpu = run.array("out_clock", np.uint64, (2,))
    assert cpu > 2000 and model == cpu  # no accelerator work in between: no stalls


TRAPS = {
    "mvin_out_of_range": "outside the scratchpad",
    "acc_out_of_range": "outside the accumulator",
    "unknown_funct": "unknown funct7 22",
    "compute_before_config": "before config_ex",
    "mvin_before_config": "before config_mvin",
    "compute_without_preload": "without a preceding preload",
    "bad_activation": "activation 2 not modelled",
    "flags_on_spad": "flags on a scratchpad address",
    "too_many_rows": "rows x",
    "ws_a_transpose": "A transpose",
    "counter_id": "unknown counter id",
    "wrong_funct3": "funct3",
    "dram_fault": "",
}


@pytest.mark.parametrize("case", list(TRAPS))
def test_bad_command_traps(rig: Rig, case: str) -> None:
    elf = rig.build(f"trap_{case}", DATA / "traps.c", defines=(f"CASE_{case.upper()}",))
    run = rig.run(elf)
    with pytest.raises(GuestError) as info:
        check_exit(run.returncode, run.console, elf)
    assert run.stats, "Spike exited normally (the model wrote its counters)"
    if case == "dram_fault":
        assert "mcause 5" in info.value.message or "mcause 7" in info.value.message, info.value.message
        return
    assert "(mcause 2)" in info.value.message, info.value.message
    assert "gemmini: illegal command" in run.stderr and TRAPS[case] in run.stderr, run.stderr
