"""Rules a target must follow that JSON Schema cannot express (cross-field and hardware limits)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tvmx.errors import InputError
from tvmx.target.data import targets_dir

# Gemmini local addresses keep the row index in bits [28:0]; bits 31..29 are flags.
GEMMINI_MAX_ROWS = 1 << 29


def check_semantics(data: dict[str, Any], path: Path) -> None:
    cpu, sim = data["cpu"], data["simulator"]
    xlen = cpu["march"][2:4]
    if not sim["isa"].startswith(f"rv{xlen}"):
        _fail(path, "$.simulator.isa", f"'{sim['isa']}' does not match cpu.march '{cpu['march']}'")
    if cpu["mabi"].startswith("lp64") != (xlen == "64"):
        _fail(path, "$.cpu.mabi", f"'{cpu['mabi']}' does not fit a {xlen}-bit cpu.march")
    if cpu.get("vector") and "v" not in cpu["march"][4:].split("_")[0]:
        _fail(path, "$.cpu.vector", f"true, but cpu.march '{cpu['march']}' has no 'v'")
    if "_x" in sim["isa"]:
        _fail(path, "$.simulator.isa", f"'{sim['isa']}' names an extension; declare it in simulator.extension")
    _check_accelerator_link(data, path)
    if data.get("accelerator", {}).get("kind") == "gemmini":
        _check_gemmini(data["accelerator"], path)


def escapes_folder(relative: str) -> bool:
    """Whether a path a target names could leave the folder it is resolved in: an absolute path, or
    one whose `..` climb above it. A target may sit on a shared search path ($TVMX_TARGETS_PATH): it
    must not make a build read (and embed, or print in a compile error) any file on the machine.
    A symlink inside the folder is followed: placing it there is the folder owner's choice."""
    normal = os.path.normpath(relative)
    return os.path.isabs(relative) or normal == ".." or normal.startswith(f"..{os.sep}")


def resolve_file(target_path: Path, relative: str) -> Path | None:
    """A file a target refers to: next to the target file, else among the shipped targets (so a
    copy of gemmini.yaml elsewhere still finds gemmini/gemmini.h). Never outside those folders."""
    if escapes_folder(relative):
        return None
    for base in (target_path.parent, targets_dir()):
        candidate = base / relative
        if candidate.is_file():
            return candidate.resolve()
    return None


def _check_accelerator_link(data: dict[str, Any], path: Path) -> None:
    """An accelerator needs a simulator model, and a model without an accelerator is a mistake."""
    acc, sim = data.get("accelerator"), data["simulator"]
    for key in ("extension", "timing"):
        if acc is None and key in sim:
            _fail(path, f"$.simulator.{key}", "given, but the target has no accelerator section")
        if acc is not None and key not in sim:
            _fail(path, "$.simulator", f"'{key}' is required for an accelerator ({acc['kind']})")
    if acc is None:
        return
    ext = sim["extension"]
    if ext["name"] != acc["kind"]:
        _fail(path, "$.simulator.extension.name", f"'{ext['name']}' does not match accelerator.kind '{acc['kind']}'")
    for where, relative in (("$.simulator.extension.source", ext["source"]), ("$.accelerator.header", acc["header"])):
        _check_named_file(path, where, relative)
    seen: dict[str, int] = {}
    for i, intrinsic in enumerate(acc.get("intrinsics", [])):
        if intrinsic["op"] in seen:  # the compiler calls one function per op: the later would shadow the earlier
            _fail(path, f"$.accelerator.intrinsics[{i}].op",
                  f"'{intrinsic['op']}' is also intrinsics[{seen[intrinsic['op']]}]'s op: one intrinsic per op")
        seen[intrinsic["op"]] = i


def _check_named_file(path: Path, where: str, relative: str) -> None:
    if os.path.isabs(relative):
        _fail(path, where, f"'{relative}' is an absolute path: a target names its files relative to its folder",
              hint="copy the file into the target's folder (or below it) and name it relative to the target")
    if escapes_folder(relative):
        _fail(path, where, f"'{relative}' lies outside the target's folder",
              hint="copy the file into the target's folder (or below it) and name it relative to the target")
    if resolve_file(path, relative) is None:
        _fail(path, where, f"'{relative}' not found next to the target file")


def _check_gemmini(acc: dict[str, Any], path: Path) -> None:
    dim = acc["dim"]
    for name, elem_bytes in (("scratchpad", 1), ("accumulator", 4)):
        mem = acc[name]
        rows = mem["size_kib"] * 1024 // (dim * elem_bytes)  # a KiB holds whole rows (at most 128 bytes each)
        where = f"$.accelerator.{name}.size_kib"
        if rows < dim:
            _fail(path, where, f"{mem['size_kib']} KiB holds {rows} rows: less than one {dim}x{dim} tile")
        if rows > GEMMINI_MAX_ROWS:
            _fail(path, where, f"{rows} rows do not fit the 29-bit row field of a local address")
    dma = acc["dma"]
    if dma["max_bytes"] < dma["bus_bits"] // 8:
        _fail(path, "$.accelerator.dma.max_bytes", f"{dma['max_bytes']} is smaller than one {dma['bus_bits']}-bit beat")


def _fail(path: Path, json_path: str, message: str, hint: str = "fix the target file") -> None:
    raise InputError(f"{path}: {json_path}: {message}", hint=hint)
