"""The Gemmini plug-in's pure-Python side: configuration from the YAML, generated header, stats."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tvmx.accelerators import SimulatorExtras, accelerator_for
from tvmx.accelerators.gemmini import Gemmini
from tvmx.errors import GuestError
from tvmx.target import load_target
from tvmx.toolchain.command import Executor


def gemmini(name: str) -> Gemmini:
    acc = accelerator_for(load_target(name))
    assert isinstance(acc, Gemmini)
    return acc


@pytest.mark.parametrize(("name", "dim", "sp_rows", "acc_rows", "blocks"),
                         [("gemmini", 16, 16384, 1024, 4), ("gemmini-8", 8, 32768, 2048, 8)])
def test_config_follows_the_yaml(name: str, dim: int, sp_rows: int, acc_rows: int, blocks: int) -> None:
    cfg = gemmini(name).config
    assert (cfg.dim, cfg.sp_rows, cfg.acc_rows, cfg.max_block_len) == (dim, sp_rows, acc_rows, blocks)
    header = cfg.params_header()
    assert f"#define GEMMINI_DIM {dim}\n" in header and f"#define GEMMINI_SP_ROWS {sp_rows}\n" in header
    model = dict(line.split() for line in cfg.model_config().splitlines())
    assert model["dim"] == str(dim) and model["queue_execute"] == "16" and model["compute_cycles"] == str(dim)


def test_include_dirs_write_the_params_header(tmp_path: Path) -> None:
    acc = gemmini("gemmini-8")
    inc, header_dir = acc.include_dirs(tmp_path)
    assert (inc / "gemmini_params.h").read_text() == acc.config.params_header()
    assert (header_dir / "gemmini.h").is_file()


def test_params_header_is_rewritten_only_when_it_changes(tmp_path: Path) -> None:
    """An unchanged configuration keeps the file's mtime (make-style rebuilds stay quiet); another one
    replaces it whole (atomic_write), leaving no temporary file."""
    inc, _ = gemmini("gemmini-8").include_dirs(tmp_path)
    params = inc / "gemmini_params.h"
    os.utime(params, (1, 1))
    gemmini("gemmini-8").include_dirs(tmp_path)
    assert params.stat().st_mtime == 1
    other = gemmini("gemmini")
    other.include_dirs(tmp_path)
    assert params.read_text() == other.config.params_header() and params.stat().st_mtime > 1
    assert [p.name for p in inc.iterdir()] == ["gemmini_params.h"]


@pytest.mark.parametrize(("size", "stride"), [(4, 4), (2, 5)])
def test_pools_beyond_the_mvout_fields_stay_on_the_cpu(size: int, stride: int) -> None:
    sizes = {"batch": 1, "in_h": 16, "in_w": 16, "groups": 1, "in_c": 16, "out_c": 16, "out_h": 16, "out_w": 16,
             "stride": 1, "pad": 1, "kh": 3, "kw": 3, "pool_size": size, "pool_stride": stride, "pool_pad": 0}
    reason = gemmini("gemmini").unsupported_layer("conv2d", sizes, Executor())
    assert reason == f"MaxPool {size}x{size}/{stride}: mvout pools windows and strides up to 3"


def test_collect_stats_adds_stalls_and_drain(tmp_path: Path) -> None:
    stats = tmp_path / "s.json"
    stats.write_text(json.dumps({
        "dim": 16, "minstret": 5000, "stall_cycles": 300, "drain_after_exit": 20, "cycles": 5320,
        "load_busy": 100, "execute_busy": 200, "store_busy": 50, "accelerator_active": 250, "commands": 40,
        "macs": 4096, "dma_bytes_read": 512, "dma_bytes_written": 256}))
    extras = SimulatorExtras(stats_file=stats)
    acc = gemmini("gemmini")
    got = acc.collect_stats(extras, instret=1000)
    assert got["instret"] == 1000 and got["cycles"] == 1320 and got["execute_busy_cycles"] == 200
    assert acc.collect_stats(extras, instret=None)["cycles"] == 5320  # the model's own minstret


def test_missing_stats_is_a_guest_error(tmp_path: Path) -> None:
    with pytest.raises(GuestError):
        gemmini("gemmini").collect_stats(SimulatorExtras(stats_file=tmp_path / "none.json"), instret=1)
