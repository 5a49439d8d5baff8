"""Rules a target must follow that JSON Schema cannot express (cross-field and hardware limits)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tvmx.errors import InputError
from tvmx.target.data import targets_dir


def check_semantics(data: dict[str, Any], path: Path) -> None:
    cpu, sim = data["cpu"], data["simulator"]
    xlen = cpu["march"][2:4]
    if not sim["isa"].startswith(f"rv{xlen}"):
        fail(path, "$.simulator.isa", f"'{sim['isa']}' does not match cpu.march '{cpu['march']}'")
    if cpu["mabi"].startswith("lp64") != (xlen == "64"):
        fail(path, "$.cpu.mabi", f"'{cpu['mabi']}' does not fit a {xlen}-bit cpu.march")
    if cpu.get("vector") and "v" not in cpu["march"][4:].split("_")[0]:
        fail(path, "$.cpu.vector", f"true, but cpu.march '{cpu['march']}' has no 'v'")
    if "_x" in sim["isa"]:
        fail(path, "$.simulator.isa", f"'{sim['isa']}' names an extension; declare it in simulator.extension")
    _check_accelerator_link(data, path)
    if "accelerator" in data:
        from tvmx.accelerators import check_accelerator_section  # lazily: the accelerators import this module

        check_accelerator_section(data["accelerator"]["kind"], data["accelerator"], path)


def escapes_folder(relative: str) -> bool:
    """Whether a path a target names could leave the folder it is resolved in: an absolute path, or
    one whose `..` climb above it. A target may sit on a shared search path ($TVMX_TARGETS_PATH): it
    must not make a build read (and embed, or print in a compile error) any file on the machine.
    A symlink inside the folder is followed: placing it there is the folder owner's choice."""
    normal = os.path.normpath(relative)
    return os.path.isabs(relative) or normal == ".." or normal.startswith(f"..{os.sep}")


def resolve_file(target_path: Path, relative: str) -> Path | None:
    """A file a target refers to: next to the target file, else among the shipped targets (so a
    copy of a shipped target elsewhere still finds the files it names). Never outside those folders."""
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
            fail(path, f"$.simulator.{key}", "given, but the target has no accelerator section")
        if acc is not None and key not in sim:
            fail(path, "$.simulator", f"'{key}' is required for an accelerator ({acc['kind']})")
    if acc is None:
        return
    ext = sim["extension"]
    if ext["name"] != acc["kind"]:
        fail(path, "$.simulator.extension.name", f"'{ext['name']}' does not match accelerator.kind '{acc['kind']}'")
    for where, relative in (("$.simulator.extension.source", ext["source"]), ("$.accelerator.header", acc["header"])):
        _check_named_file(path, where, relative)
    seen: dict[str, int] = {}
    for i, intrinsic in enumerate(acc.get("intrinsics", [])):
        if intrinsic["op"] in seen:  # the compiler calls one function per op: the later would shadow the earlier
            fail(path, f"$.accelerator.intrinsics[{i}].op",
                 f"'{intrinsic['op']}' is also intrinsics[{seen[intrinsic['op']]}]'s op: one intrinsic per op")
        seen[intrinsic["op"]] = i


def _check_named_file(path: Path, where: str, relative: str) -> None:
    if os.path.isabs(relative):
        fail(path, where, f"'{relative}' is an absolute path: a target names its files relative to its folder",
             hint="copy the file into the target's folder (or below it) and name it relative to the target")
    if escapes_folder(relative):
        fail(path, where, f"'{relative}' lies outside the target's folder",
             hint="copy the file into the target's folder (or below it) and name it relative to the target")
    if resolve_file(path, relative) is None:
        fail(path, where, f"'{relative}' not found next to the target file")


def fail(path: Path, json_path: str, message: str, hint: str = "fix the target file") -> None:
    """Reject the target file at `path` for the value at `json_path`."""
    raise InputError(f"{path}: {json_path}: {message}", hint=hint)
