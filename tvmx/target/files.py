"""The files a target makes a build read besides its YAML: what it names (the accelerator's header,
the simulator model's source), resolved as the build resolves them, and the files those include
from their own folder. The build key covers each by content."""

from __future__ import annotations

import re
from pathlib import Path

from tvmx.target.checks import resolve_file
from tvmx.target.model import Target

# `#include "x.h"`: quoted includes are looked up next to the including file first.
_LOCAL_INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"', re.MULTILINE)


def local_includes(source: Path) -> list[Path]:
    """Files `source` includes with quotes that exist in its own folder (or below), transitively.
    A quoted include found elsewhere (a header an accelerator generates into the build) is not listed:
    what generates it is covered by its own inputs."""
    root = source.resolve().parent
    seen: dict[Path, None] = {}
    pending = [source]
    while pending:
        current = pending.pop()
        try:
            text = current.read_text(errors="replace")
        except OSError:
            continue
        for name in _LOCAL_INCLUDE.findall(text):
            candidate = (current.parent / name).resolve()
            inside = root in candidate.parents
            if inside and candidate.is_file() and candidate != source.resolve() and candidate not in seen:
                seen[candidate] = None
                pending.append(candidate)
    return sorted(seen)


def referenced_files(target: Target) -> dict[str, Path]:
    """Role -> file, for every file the target names and the files those include locally."""
    named: dict[str, str] = {}
    if target.accelerator and "header" in target.accelerator:
        named["accelerator.header"] = str(target.accelerator["header"])
    if target.simulator.extension:
        named["simulator.extension.source"] = target.simulator.extension["source"]
    files: dict[str, Path] = {}
    for role, relative in named.items():
        path = resolve_file(target.path, relative)
        if path is None:  # the loader's checks refuse such a target; a hand-made Target may still get here
            continue
        files[role] = path
        for included in local_includes(path):
            files[f"{role} includes {included.relative_to(path.parent).as_posix()}"] = included
    return files
