"""`tvmx compile --depfile FILE`: a make rule naming every file the build read (clang's -MD -MF)."""

from __future__ import annotations

from pathlib import Path

from tvmx.build.builddir import atomic_write
from tvmx.errors import InputError


def _escaped(path: Path) -> str:
    """A path as make reads it in a rule (spaces, '#', '$' and ':' escaped)."""
    text = str(path).replace("$", "$$")
    for char in " #:":
        text = text.replace(char, "\\" + char)
    return text


def make_rule(target: Path, deps: list[Path]) -> str:
    """`target: deps`, then an empty rule per dependency (as -MP does), so that a dependency that
    disappears is rebuilt around instead of stopping make."""
    names = [_escaped(d) for d in dict.fromkeys(deps)]
    rule = " \\\n  ".join([f"{_escaped(target)}:", *names])
    return rule + "\n" + "".join(f"\n{name}:\n" for name in names)


def check_depfile(path: Path) -> None:
    """Before the build: a depfile that cannot be written is refused before anything is compiled."""
    if path.is_dir() or not path.parent.is_dir():
        raise InputError(f"--depfile {path}: " + ("is a folder" if path.is_dir() else
                                                  f"folder {path.parent} does not exist"),
                         hint="name a file in an existing folder")


def write_depfile(path: Path, target: Path, deps: list[Path]) -> None:
    """Written only when its text changes: an unchanged build leaves its mtime alone, as it does the ELF's."""
    text = make_rule(target, deps)
    if path.is_file() and path.read_text() == text:
        return
    atomic_write(path, text)
