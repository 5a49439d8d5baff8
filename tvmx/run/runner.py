"""`tvmx run`: a compiled model (build dir) or any bare-metal ELF on the target's simulator."""

from __future__ import annotations

import io as io_module
import json
import math
import struct
import subprocess
import tempfile
import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from tvmx.accelerators import Accelerator, SimulatorExtras, accelerator_for
from tvmx.build.builddir import BuildDir, atomic_write
from tvmx.errors import CommandFailedError, GuestError, InputError, UsageError, one_line
from tvmx.run import elfio
from tvmx.run.profile import Profile, build_profile, kernel_work
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
    profile: Profile | None = None  # per kernel: counters around its calls (run/profile.json)


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
    if timeout is not None and not (math.isfinite(timeout) and timeout > 0):
        raise UsageError(f"--timeout must be a positive number of seconds, not {timeout:g}",
                         hint="leave it out for the target's simulator.timeout_s")
    check_elf(elf, target)
    limit = timeout or target.simulator.timeout_s
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
        try:
            res = executor.run(cmd, check=False, timeout=limit)
        except CommandFailedError as exc:
            if not isinstance(exc.__cause__, subprocess.TimeoutExpired):
                raise
            raise GuestError(f"guest {elf.name} did not finish within {limit:g} s: stopped",
                             hint="it may loop forever; allow it longer with --timeout SECONDS") from exc
        seconds = time.perf_counter() - t0
        blob = read_signature(signature) if signature.exists() else b""
        base = places.get("begin_signature", (0, 0))[0]
        counters = None
        if blob and "tvmx_stats" in places:
            counters = guest.parse_stats(elfio.read_region(blob, base, places["tvmx_stats"][0], 32))
        stats = _stats(accel, extras, counters.instret if counters else None)
    return SimulatorRun(res.returncode, res.stdout + res.stderr, stats, blob, base, seconds)


ELF_HINT = "pass a bare-metal RISC-V ELF, e.g. build/<model>-<target>/model.elf"


def check_elf(elf: Path, target: Target) -> None:
    """A RISC-V ELF of the target's width, or an InputError before anything parses it further."""
    try:
        with elf.open("rb") as f:
            header = ELFFile(f).header
    except OSError as exc:
        raise InputError(f"{elf}: cannot read: {exc.strerror}", hint=ELF_HINT) from exc
    except (ELFError, ValueError, struct.error, EOFError) as exc:
        raise InputError(f"{elf}: not an ELF file ({one_line(str(exc), 80) or exc.__class__.__name__})",
                         hint=ELF_HINT) from exc
    machine, bits = header["e_machine"], 32 if header["e_ident"]["EI_CLASS"] == "ELFCLASS32" else 64
    if machine != "EM_RISCV" or bits != target.cpu.xlen:
        raise InputError(f"{elf}: a {bits}-bit {machine} ELF, but target {target.name} runs "
                         f"{target.cpu.xlen}-bit RISC-V", hint=ELF_HINT)


def load_inputs(io: dict[str, Any], inputs: Path | None, seed: int | None) -> dict[str, np.ndarray]:
    """Inputs by ONNX name from an .npz, or random ones from `seed` (the same ones `verify` uses)."""
    specs = input_specs(io)
    if inputs is not None and seed is not None:
        raise UsageError("give --inputs or --seed, not both",
                         hint="--inputs reads the arrays from an .npz; --seed draws random ones")
    if inputs is None:
        return random_inputs(specs, seed or 0)
    arrays = read_npz(inputs, specs)
    return {spec["name"]: _input_array(inputs, arrays[spec["name"]], spec) for spec in specs}


def read_io(build_dir: Path) -> dict[str, Any]:
    """A build's io.json (where each input and output lives in the ELF), parsed and checked."""
    try:
        io = json.loads((build_dir / "io.json").read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"{build_dir / 'io.json'}: cannot read: {one_line(str(exc), 120)}",
                         hint="recompile the model with `tvmx compile`") from exc
    input_specs(io)
    return io  # type: ignore[no-any-return]


def input_specs(io: Any) -> list[dict[str, Any]]:
    """The build's io.json inputs, checked: a hand-edited or foreign file is an error, not a crash later."""
    specs = io.get("inputs") if isinstance(io, dict) else None
    if not isinstance(specs, list) or not all(_is_spec(s) for s in specs):
        raise InputError("the build's io.json does not describe the model's inputs",
                         hint="recompile the model with `tvmx compile` (io.json is tvmx's own file)")
    return specs


def _is_spec(spec: Any) -> bool:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or not isinstance(spec.get("shape"), list):
        return False
    if not all(type(d) is int and d >= 0 for d in spec["shape"]):
        return False
    try:  # np.dtype(None) would be float64: the dtype must be named
        return isinstance(spec.get("dtype"), str) and np.dtype(spec["dtype"]).kind in "biuf"
    except TypeError:
        return False


NPZ_HINT = "save the inputs with numpy.savez(FILE, NAME=array, ...), one array per model input"
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip with members, an empty zip
# A member may carry a header and the widest dtype (complex128) but no more: refuse a
# decompression bomb before reading it.
NPY_SLACK_BYTES = 1 << 16
# What zipfile and numpy raise on a damaged archive (zipfile: unknown versions and methods,
# encryption, undecodable names; zlib: bad compressed data; numpy: bad .npy headers, pickles).
NPZ_ERRORS = (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError, NotImplementedError,
              RuntimeError, zlib.error, struct.error)


def read_npz(path: Path, specs: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    """The arrays of an .npz that the model takes (others are not read); every way the file can be
    bad is an InputError naming it."""
    try:
        with path.open("rb") as f:
            magic = f.read(6)
    except OSError as exc:
        raise InputError(f"cannot read inputs {path}: {exc.strerror}", hint="check the path") from exc
    if magic.startswith(b"\x93NUMPY"):
        raise InputError(f"{path}: holds a single .npy array, not an .npz archive of named arrays", hint=NPZ_HINT)
    if magic[:4] not in ZIP_MAGIC:
        raise InputError(f"{path}: not an .npz archive (numpy.savez writes a zip file)", hint=NPZ_HINT)
    try:
        with zipfile.ZipFile(path) as archive:
            members = {name.removesuffix(".npy"): name for name in archive.namelist()}
            for spec in specs:
                if spec["name"] not in members:
                    have = f" (it holds: {', '.join(sorted(members))})" if members else " (it is empty)"
                    inputs = ", ".join(f"{s['name']} {s['dtype']}{s['shape']}" for s in specs)
                    raise InputError(f"{path}: no array named '{spec['name']}'{have}",
                                     hint=f"the model's inputs: {inputs}")
            return {spec["name"]: _read_member(path, archive, members[spec["name"]], spec) for spec in specs}
    except NPZ_ERRORS as exc:
        raise InputError(f"{path}: not an .npz archive ({one_line(str(exc), 120)})", hint=NPZ_HINT) from exc


def _read_member(path: Path, archive: zipfile.ZipFile, member: str, spec: dict[str, Any]) -> np.ndarray:
    limit = int(np.prod(spec["shape"], dtype=np.int64)) * 16 + NPY_SLACK_BYTES
    if archive.getinfo(member).file_size > limit:
        raise InputError(f"{path}: '{spec['name']}' holds {archive.getinfo(member).file_size:,} bytes, far more than "
                         f"a {spec['dtype']}{spec['shape']} array", hint=_expected(spec))
    try:
        with archive.open(member) as f:
            return np.asarray(np.lib.format.read_array(f, allow_pickle=False))
    except NPZ_ERRORS as exc:
        raise InputError(f"{path}: array '{spec['name']}' cannot be read: {one_line(str(exc), 160)}",
                         hint=NPZ_HINT) from exc


def _expected(spec: dict[str, Any]) -> str:
    return f"the model takes '{spec['name']}' as {spec['dtype']}{spec['shape']}"


def _input_array(path: Path, arr: np.ndarray, spec: dict[str, Any]) -> np.ndarray:
    """One input, checked against the model: its shape, and a dtype that converts without loss of kind."""
    name, dtype = spec["name"], np.dtype(spec["dtype"])
    if list(arr.shape) != spec["shape"]:
        raise InputError(f"{path}: '{name}' has shape {list(arr.shape)}, expected {spec['shape']}",
                         hint=_expected(spec))
    if not np.can_cast(arr.dtype, dtype, casting="same_kind"):
        raise InputError(f"{path}: '{name}' has dtype {arr.dtype}, which does not convert to the model's {dtype}",
                         hint=_expected(spec))
    if dtype.kind in "iu" and arr.size and arr.dtype.kind in "iu":
        info = np.iinfo(dtype)
        if arr.min() < info.min or arr.max() > info.max:
            raise InputError(f"{path}: '{name}' has values outside the range of {dtype} [{info.min}, {info.max}]",
                             hint=_expected(spec))
    with np.errstate(over="ignore"):
        out = arr.astype(dtype)
    if dtype.kind == "f" and arr.dtype.kind == "f" and np.count_nonzero(np.isfinite(arr) & ~np.isfinite(out)):
        raise InputError(f"{path}: '{name}' has values beyond the range of {dtype} (they would become inf)",
                         hint=_expected(spec))
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
              *, timeout: float | None = None, chart: bool = False) -> RunResult:
    """Run a build on `inputs`: outputs as .npy, stats.json and profile.json (and, with `chart`,
    profile.png) in `output_dir` (default BUILD_DIR/run)."""
    elf, io_path = build_dir / "model.elf", build_dir / "io.json"
    if not elf.is_file() or not io_path.is_file():
        raise InputError(f"{build_dir} is not a finished tvmx build (no model.elf / io.json)",
                         hint="run `tvmx compile MODEL.onnx --target T` first")
    check_elf(elf, target)
    io = read_io(build_dir)
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
        path = out_dir / f"{safe_name(spec['name'])}.npy"
        buf = io_module.BytesIO()
        np.save(buf, arr)
        atomic_write(path, buf.getvalue())
        files.append(path)
    profile = _kernel_profile(target, build_dir, io, elf, sim)
    stats = {**sim.stats, **_offload_stats(profile), "wall_seconds": round(sim.seconds, 3)}
    if profile is not None:
        profile_path = out_dir / "profile.json"
        atomic_write(profile_path, json.dumps(profile.to_json(), indent=1) + "\n")
        files.append(profile_path)
        if chart:
            from tvmx.run.chart import profile_png  # matplotlib: only when asked for

            atomic_write(out_dir / "profile.png", profile_png(profile.to_json()))
            files.append(out_dir / "profile.png")
    stats_path = out_dir / "stats.json"
    atomic_write(stats_path, json.dumps(stats, indent=2) + "\n")
    files.append(stats_path)
    BuildDir(build_dir).claim(files)
    return RunResult(outputs, stats, sim.console, sim.seconds, files, profile)


def _kernel_profile(target: Target, build_dir: Path, io: dict[str, Any], elf: Path,
                    sim: SimulatorRun) -> Profile | None:
    spec = io.get("profile")
    if not spec or not spec.get("calls"):
        return None
    places = elfio.symbols(elf, {spec["symbol"], spec.get("overhead_symbol") or spec["symbol"]})
    if spec["symbol"] not in places:
        return None

    def region(symbol: str, nbytes: int) -> bytes:
        if symbol not in places:
            raise InputError(f"{elf}: no profile symbol '{symbol}'", hint="recompile the model with `tvmx compile`")
        return elfio.read_region(sim.signature, sim.signature_base, places[symbol][0], nbytes)

    accel = accelerator_for(target)
    kind = str(target.accelerator["kind"]) if target.accelerator else None
    return build_profile(target.name, accel, kind, spec, region, sim.stats, kernel_work(build_dir))


def _offload_stats(profile: Profile | None) -> dict[str, Any]:
    """The offloaded kernels' share of the run, from the profile: their calls, cycles and MACs, the
    array utilisation over those cycles, and the CPU's share of the rest."""
    accel = [k for k in profile.kernels if k.where == "accelerator"] if profile else []
    if profile is None or not accel or not profile.total["cycles"]:
        return {}
    cycles = sum(k.cycles for k in accel)
    macs = sum(k.macs or 0 for k in accel)  # the layers' work (the array may compute more)
    util = sum(k.utilisation * k.cycles for k in accel if k.utilisation is not None) / cycles if cycles else 0.0
    return {"offloaded_calls": sum(k.calls for k in accel), "offloaded_cycles": cycles, "offloaded_macs": macs,
            "offloaded_utilisation": round(util, 4), "cpu_share": round(1.0 - cycles / profile.total["cycles"], 4)}


def safe_name(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
