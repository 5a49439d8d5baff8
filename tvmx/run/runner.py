"""`tvmx run`: a compiled model (build dir) or any bare-metal ELF on the target's simulator."""

from __future__ import annotations

import io as io_module
import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tvmx.accelerators import Accelerator, SimulatorExtras, accelerator_for
from tvmx.build.builddir import BuildDir, atomic_write
from tvmx.errors import InputError
from tvmx.run import elfio
from tvmx.simulator import guest
from tvmx.simulator.spike import Spike, read_signature
from tvmx.target.model import Target
from tvmx.toolchain.command import Executor


@dataclass
class RunResult:
    outputs: dict[str, np.ndarray]
    stats: dict[str, Any]
    console: str
    seconds: float
    files: list[Path] = field(default_factory=list)
    profile: list[tuple[str, int]] = field(default_factory=list)  # (kernel, instret) per call, in order


def _stats(accel: Accelerator | None, extras: SimulatorExtras, instret: int | None) -> dict[str, Any]:
    if accel is not None:
        return accel.collect_stats(extras, instret)
    # A CPU-only Spike retires one instruction per cycle.
    return {"instret": instret, "cycles": instret}


@dataclass
class SimulatorRun:
    returncode: int
    console: str
    stats: dict[str, Any]
    signature: bytes  # the dumped .tvmx_outputs region
    signature_base: int  # its guest address
    seconds: float


def run_elf(target: Target, elf: Path, *, timeout: float | None = None,
            log_path: Path | None = None) -> SimulatorRun:
    """Run a bare-metal ELF to completion, capturing its console."""
    executor = Executor(log_path)
    with tempfile.TemporaryDirectory(prefix="tvmx-run-") as tmp:
        workdir = Path(tmp)
        accel = accelerator_for(target)
        extras = accel.simulator_extras(workdir, executor) if accel else SimulatorExtras()
        spike = Spike(target.simulator, extras.extlibs, extras.extension)
        signature = workdir / "signature.txt"
        places = elfio.symbols(elf, {"begin_signature", "tvmx_stats"})
        cmd = spike.command(elf, signature=signature if "begin_signature" in places else None, env=extras.env)
        t0 = time.perf_counter()
        res = executor.run(cmd, check=False, timeout=timeout or target.simulator.timeout_s)
        seconds = time.perf_counter() - t0
        blob = read_signature(signature) if signature.exists() else b""
        base = places.get("begin_signature", (0, 0))[0]
        counters = None
        if blob and "tvmx_stats" in places:
            counters = guest.parse_stats(elfio.read_region(blob, base, places["tvmx_stats"][0], 32))
        stats = _stats(accel, extras, counters.instret if counters else None)
    return SimulatorRun(res.returncode, res.stdout + res.stderr, stats, blob, base, seconds)


def load_inputs(io: dict[str, Any], inputs: Path | None, seed: int | None) -> dict[str, np.ndarray]:
    """Inputs by ONNX name from an .npz, or random ones from `seed` (the same ones `verify` uses)."""
    specs = io["inputs"]
    if inputs is None:
        return random_inputs(specs, seed or 0)
    try:
        data = np.load(inputs)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read inputs {inputs}: {exc}", hint="save inputs with numpy.savez") from exc
    out = {}
    for spec in specs:
        if spec["name"] not in data:
            raise InputError(f"{inputs}: no array named '{spec['name']}'",
                             hint=f"the model's inputs are: {', '.join(s['name'] for s in specs)}")
        arr = np.asarray(data[spec["name"]])
        if list(arr.shape) != spec["shape"]:
            raise InputError(f"{inputs}: '{spec['name']}' has shape {list(arr.shape)}, expected {spec['shape']}")
        out[spec["name"]] = arr.astype(spec["dtype"])
    return out


def random_inputs(specs: list[dict[str, Any]], seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for spec in specs:
        dtype = np.dtype(spec["dtype"])
        if dtype.kind == "f":
            out[spec["name"]] = rng.standard_normal(spec["shape"]).astype(dtype)
        elif dtype == np.bool_:
            out[spec["name"]] = rng.integers(0, 2, spec["shape"]).astype(dtype)
        else:
            info = np.iinfo(dtype)
            out[spec["name"]] = rng.integers(max(info.min, -128), min(info.max, 127) + 1, spec["shape"]).astype(dtype)
    return out


def run_build(target: Target, build_dir: Path, inputs: dict[str, np.ndarray], output_dir: Path | None,
              *, timeout: float | None = None) -> RunResult:
    elf, io_path = build_dir / "model.elf", build_dir / "io.json"
    if not elf.is_file() or not io_path.is_file():
        raise InputError(f"{build_dir} is not a finished tvmx build (no model.elf / io.json)",
                         hint="run `tvmx compile MODEL.onnx --target T` first")
    io = json.loads(io_path.read_text())
    out_dir = output_dir or build_dir / "run"
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tvmx-elf-") as tmp:
        patched = Path(tmp) / "model.elf"
        elfio.patch_inputs(elf, patched, {s["symbol"]: inputs[s["name"]].astype(s["dtype"]).astype(
            np.dtype(s["dtype"]).newbyteorder("<")).tobytes() for s in io["inputs"]})
        sim = run_elf(target, patched, timeout=timeout, log_path=build_dir / "commands.sh")
    guest.check_exit(sim.returncode, sim.console, elf)
    places = elfio.symbols(elf, {s["symbol"] for s in io["outputs"]})
    outputs, files = {}, []
    for spec in io["outputs"]:
        addr = places[spec["symbol"]][0]
        nbytes = int(np.prod(spec["shape"], dtype=np.int64)) * np.dtype(spec["dtype"]).itemsize
        data = elfio.read_region(sim.signature, sim.signature_base, addr, nbytes)
        arr = elfio.to_array(data, spec["dtype"], spec["shape"])
        outputs[spec["name"]] = arr
        path = out_dir / f"{_safe(spec['name'])}.npy"
        buf = io_module.BytesIO()
        np.save(buf, arr)
        atomic_write(path, buf.getvalue())
        files.append(path)
    stats = {**sim.stats, **_offload_profile(target, elf, sim), "wall_seconds": round(sim.seconds, 3)}
    profile = _kernel_profile(io, elf, sim)
    if profile:
        profile_path = out_dir / "profile.json"
        atomic_write(profile_path, json.dumps([{"kernel": k, "instret": n} for k, n in profile], indent=1) + "\n")
        files.append(profile_path)
    stats_path = out_dir / "stats.json"
    atomic_write(stats_path, json.dumps(stats, indent=2) + "\n")
    files.append(stats_path)
    BuildDir(build_dir).claim(files)
    return RunResult(outputs, stats, sim.console, sim.seconds, files, profile)


def _kernel_profile(io: dict[str, Any], elf: Path, sim: SimulatorRun) -> list[tuple[str, int]]:
    spec = io.get("profile")
    place = elfio.symbols(elf, {spec["symbol"]}).get(spec["symbol"]) if spec else None
    if not spec or place is None or not spec["calls"]:
        return []
    counts = np.frombuffer(elfio.read_region(sim.signature, sim.signature_base, place[0], 8 * len(spec["calls"])),
                           "<u8")
    return [(str(k), int(n)) for k, n in zip(spec["calls"], counts, strict=True)]


def _offload_profile(target: Target, elf: Path, sim: SimulatorRun) -> dict[str, Any]:
    """Cycles inside offloaded layers (the generated glue counts them): utilisation and CPU share."""
    place = elfio.symbols(elf, {"tvmx_accel_profile"}).get("tvmx_accel_profile")
    if place is None or target.accelerator is None or not sim.stats.get("cycles"):
        return {}
    cycles, macs, calls = np.frombuffer(elfio.read_region(sim.signature, sim.signature_base, place[0], 24), "<u8")
    dim = int(target.accelerator["dim"])
    total = int(sim.stats["cycles"])
    return {"offloaded_calls": int(calls), "offloaded_cycles": int(cycles), "offloaded_macs": int(macs),
            "offloaded_utilisation": round(float(macs) / (dim * dim * float(cycles)), 4) if cycles else 0.0,
            "cpu_share": round(1.0 - float(cycles) / total, 4)}


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
