"""The cycle model against counts worked out by hand from TIMING.md's rules and the target's timing
(simulator.timing, dim, accelerator.dma): a load-compute-store chain, a full reservation station
(the CPU stalls), a read-after-write on one scratchpad row (and the same without the dependency),
LOOP_WS and LOOP_CONV_WS (the unroller issues one command per cycle per stream, no CPU
instructions), and the drain after the program exits (the simulation's end: the CPU's part
includes the exit's spin on tohost until Spike's host notices it). Exact equality on both Gemmini sizes: any
change to the model's timing rules must show up here."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from tvmx.simulator.guest import check_exit

from .conftest import DATA, GuestRun, Rig

pytestmark = [pytest.mark.toolchain, pytest.mark.spike]


def params(rig: Rig) -> dict[str, int]:
    """The timing parameters, with the shorthands used below."""
    t: dict[str, Any] = dict(rig.gemmini.config.timing)
    assert t["dma_request_cycles"] == 0  # the counts below assume pipelined requests (both targets)
    return {"D": rig.dim, "bus": rig.gemmini.config.dma_bus_bytes, "maxb": rig.gemmini.config.max_block_len,
            "lat": t["dma_latency"], "rd": t["spad_read_latency"], "C": t["compute_cycles"], "P": t["preload_cycles"],
            "L": t["pipeline_latency"], "qld": t["queue_load"]}


def beats(nbytes: int, p: dict[str, int]) -> int:
    return -(-nbytes // p["bus"])


@pytest.fixture(scope="session")
def timed(rig: Rig) -> tuple[Rig, GuestRun]:
    elf = rig.build("cycle_model", DATA / "cycle_model.c")
    run = rig.run(elf)
    check_exit(run.returncode, run.console, elf)
    return rig, run


def measured(run: GuestRun, case: int) -> tuple[int, int]:
    return (int(run.array("out_t", np.uint64, (8,))[case]), int(run.array("out_s", np.uint64, (8,))[case]))


def test_load_compute_store_chain(timed: tuple[Rig, GuestRun]) -> None:
    """mvin A (t0: D rows of D bytes on the load unit), mvin2 B (after A: the unit is in order), the
    preload of B waits for B to land (+ dma_latency) and costs preload_cycles (the array was idle),
    the compute compute_cycles, its rows land pipeline_latency later; the mvout then stores D rows
    and lands spad_read_latency + dma_latency later; the flush waits for that. Counted from the
    read before the sequence (t0 - 1) to the read after the flush (done + 1)."""
    rig, run = timed
    p = params(rig)
    row = beats(p["D"], p)
    done = 2 * p["D"] * row + p["lat"] + p["P"] + p["C"] + p["L"] + p["D"] * row + p["rd"] + p["lat"]
    assert measured(run, 0) == (1 + done + 1, done - 5)  # the CPU stalls from the flush, issued at t0 + 5
    assert {16: 318, 8: 262}[rig.dim] == 1 + done + 1


def test_full_load_queue_stalls_the_cpu(timed: tuple[Rig, GuestRun]) -> None:
    """Ten mvins of D rows of D * max_block_len bytes (4D cycles each), issued one per cycle from t0:
    the ninth finds the load queue's 8 entries busy and waits until the first completes (t0 + 4D),
    the tenth until the second does (t0 + 8D); the stall counter holds both waits."""
    rig, run = timed
    p = params(rig)
    assert p["qld"] == 8
    occ = p["D"] * beats(p["D"] * p["maxb"], p)
    assert occ == 4 * p["D"]
    stall = (occ - 8) + (2 * occ - (occ + 1))  # 9th issued at t0 + 8, 10th at t0 + 1 + 4D
    assert measured(run, 1) == (1 + 10 + stall, stall)
    assert {16: (130, 119), 8: (66, 55)}[rig.dim] == (1 + 10 + stall, stall)


def test_read_after_write_on_one_row(timed: tuple[Rig, GuestRun]) -> None:
    """mvin of one row (1 cycle, lands dma_latency later), then a preload of that row as B: it starts
    when the row lands and costs preload_cycles; the flush waits for it. With a preload of another
    row (case 3) nothing waits: the flush waits for the mvin's landing only."""
    rig, run = timed
    p = params(rig)
    dependent = 1 + 1 + p["lat"] + p["P"] + 1
    independent = 1 + 1 + p["lat"] + 1
    assert measured(run, 2) == (dependent, dependent - 4)
    assert measured(run, 3) == (independent, independent - 4)
    assert dependent - independent == p["P"]


def test_loop_ws_two_k_blocks(timed: tuple[Rig, GuestRun]) -> None:
    """LOOP_WS of 1 x 1 x 2 blocks from t0, one command per cycle: mvin of A's two k blocks in one
    burst (D rows of 2D bytes), mvin2 of B's two blocks (D cycles each), preload B0 (waits for B0 to
    land, exposed preload_cycles), compute A0, preload B1 (array busy: 1 cycle), compute A1
    (accumulating), then the mvout of C after A1's rows land."""
    rig, run = timed
    p = params(rig)
    d, row = p["D"], beats(p["D"], p)
    a = d * beats(2 * d, p)
    b0_lands = a + d * row + p["lat"]
    compute0_end = b0_lands + p["P"] + p["C"]
    compute1_end = compute0_end + 1 + p["C"]
    done = compute1_end + p["L"] + d * row + p["rd"] + p["lat"]
    assert measured(run, 4) == (1 + done + 1, done - 1)
    assert {16: 351, 8: 271}[rig.dim] == 1 + done + 1


def test_loop_conv_ws_one_row(timed: tuple[Rig, GuestRun]) -> None:
    """LOOP_CONV_WS of a 1x1 conv, D output pixels of one row, D channels in and out, with bias.
    Its load stream from t0: mvin3 of the bias (D rows of 4D bytes), the input (D pixels), the
    weights (D rows); its execute stream starts once they are issued: the preload waits for the
    weights to land (exposed preload_cycles), the compute follows; its store stream once the
    computes are issued: the mvout waits for the compute's rows."""
    rig, run = timed
    p = params(rig)
    d, row = p["D"], beats(p["D"], p)
    weights_land = d * beats(4 * d, p) + d * row + d * row + p["lat"]
    done = weights_land + p["P"] + p["C"] + p["L"] + d * row + p["rd"] + p["lat"]
    assert measured(run, 5) == (1 + done + 1, done - 1)
    assert {16: 382, 8: 278}[rig.dim] == 1 + done + 1


def test_loop_results_are_right(timed: tuple[Rig, GuestRun]) -> None:
    """The conv loop of the last case wrote bias + A @ B, requantized with scale 1 (saturating)."""
    rig, run = timed
    d, maxb = rig.dim, rig.gemmini.config.max_block_len
    a = (np.arange(maxb * d * d) * 7 % 23 - 11)[:d * d].reshape(d, d)
    b = (np.arange(2 * d * d) * 5 % 19 - 9)[:d * d].reshape(d, d)
    bias = np.arange(d) * 1000 - 7000
    want = np.clip(a @ b + bias, -128, 127)
    assert np.array_equal(run.array("out_c", np.int8, (d, d)), want)


def test_drain_after_exit(timed: tuple[Rig, GuestRun]) -> None:
    """A long conv loop launched at c0 + 1, then main returns: the CPU ends (after the exit's spin
    on tohost) long before the unroller does. The run's cycles are where the same loop ends when
    timed to its end (case 6: launched at its read + 2, ends out_t - 2 later), the part after the
    CPU's end reported as drain_after_exit."""
    rig, full = timed
    elf = rig.build("cycle_drain", DATA / "cycle_model.c", defines=("CASE_DRAIN",))
    run = rig.run(elf)
    check_exit(run.returncode, run.console, elf)
    c0 = int(run.array("out_t", np.uint64, (8,))[0])
    length, _ = measured(full, 6)
    s = run.stats
    assert s["cycles"] == c0 + 1 + (length - 2)
    assert s["drain_after_exit"] == s["cycles"] - s["minstret"] - s["stall_cycles"]
    assert s["drain_after_exit"] > 5000 and s["minstret"] > c0  # (the exit's own instructions came first)
