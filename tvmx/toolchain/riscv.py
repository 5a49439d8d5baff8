"""The RISC-V C toolchain: discovery (target setting, $RISCV, Debian packages) and its commands."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tvmx.errors import ToolNotFoundError
from tvmx.target.data import runtime_dir
from tvmx.target.model import CpuSpec, ToolchainSpec
from tvmx.toolchain.command import Command, Executor, version_line

RUNTIME_DIR = runtime_dir()  # ships inside the package
PICOLIBC_DIR = Path("/usr/lib/picolibc/riscv64-unknown-elf")
DEBIAN_GCC = "riscv64-unknown-elf-gcc"
INSTALL_HINT = (
    "install Debian's cross toolchain: apt-get install clang lld llvm binutils-riscv64-unknown-elf "
    "gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf (or `make setup`), "
    "or point $RISCV at a riscv-gnu-toolchain"
)


@dataclass(frozen=True)
class Toolchain:
    kind: str  # "clang" or "gcc": decides flag spelling
    cc: str
    libc: str  # "picolibc" or "newlib"
    origin: str  # where discovery found it: "target", "$RISCV" or "debian"
    objdump: str
    cpu: CpuSpec
    spec: ToolchainSpec
    libgcc: str | None = None  # clang only: gcc's runtime library for this multilib

    def describe(self) -> str:
        return f"{self.cc} ({self.kind}, {self.libc}, from {self.origin})"

    def version(self) -> str:
        """The compiler's `--version` first line (cached per process)."""
        return version_line(self.cc)

    def cflags(self) -> list[str]:
        flags = [f"-march={self.cpu.march}", f"-mabi={self.cpu.mabi}", "-mcmodel=medany"]
        flags += ["-ffreestanding", "-fno-common", "-ffunction-sections", "-fdata-sections", "-g"]
        if self.kind == "clang":
            # lld 14 cannot relax RISC-V relocations
            flags = ["--target=riscv64-unknown-elf" if self.cpu.xlen == 64 else "--target=riscv32-unknown-elf",
                     *flags, "-mno-relax"]
            if self.libc == "picolibc":
                flags += ["-nostdlibinc", "-isystem", str(PICOLIBC_DIR / "include")]
            flags += list(self.spec.clang_cflags)
        else:
            # gcc fuses products and sums into one multiply-add even across statements: a dequantized
            # sum would then round differently from the QDQ graph (clang's kernels choose per kernel,
            # kernels_c.CONTRACT)
            flags += ["-ffp-contract=off"]
            if self.libc == "picolibc":
                flags += ["--specs=picolibc.specs"]
            flags += list(self.spec.gcc_cflags)
        return [*flags, *self.spec.cflags, "-I", str(RUNTIME_DIR)]

    def reproducible_flags(self, build_root: Path, shipped: dict[Path, str] | None = None) -> list[str]:
        """Keep absolute paths out of the ELF's debug info: the build folder's own (the compiler runs in
        it, on relative paths) and those of `shipped` folders (the runtime, an accelerator's header:
        wherever tvmx is installed), each mapped to a fixed name. The same model built in two folders,
        or by a checkout and a wheel of the same tvmx, then links to the same bytes."""
        maps = {build_root: ".", RUNTIME_DIR: "tvmx-runtime", **(shipped or {})}
        flags = [f"-ffile-prefix-map={path}={name}" for path, name in maps.items()]
        if self.kind == "clang":  # clang 14's assembler keeps the absolute cwd in .S line tables without it
            return [*flags, "-fdebug-compilation-dir=."]
        # gcc 12 hands only -fdebug-prefix-map to gas, for .S
        return [*flags, *(f"-fdebug-prefix-map={path}={name}" for path, name in maps.items())]

    def ldflags(self, map_file: Path, script: Path | None = None) -> list[str]:
        script = script or RUNTIME_DIR / "link.ld"
        flags = ["-nostartfiles", "-T", str(script), f"-Wl,-Map={map_file}", "-Wl,--gc-sections"]
        if self.kind == "clang":
            flags = ["-nostdlib", "-fuse-ld=lld", *flags[1:]]
            if self.libc == "picolibc":
                flags += ["-L", str(PICOLIBC_DIR / "lib" / multilib_dir(self.cpu))]
            flags += ["-lc", "-lm"] + ([self.libgcc] if self.libgcc else [])
        else:
            flags += ["-lc", "-lm", "-lgcc"]
        return flags

    def runtime_sources(self) -> list[Path]:
        return [RUNTIME_DIR / "crt0.S", RUNTIME_DIR / "htif.c", RUNTIME_DIR / "string.c"]

    def build_elf(
        self,
        sources: list[Path],
        output: Path,
        *,
        map_file: Path,
        include_dirs: tuple[Path, ...] = (),
        extra_flags: tuple[str, ...] = (),
        cwd: Path | None = None,
        runtime: list[Path] | None = None,
        script: Path | None = None,
    ) -> Command:
        """Compile and link `sources` with the bare-metal runtime (`runtime`: copies of
        runtime_sources() elsewhere; default: the shipped ones) into one ELF, laid out by `script`
        (default: the shipped link.ld, for 2048 MB of RAM; see linker_script)."""
        srcs = [*(self.runtime_sources() if runtime is None else runtime), *sources]
        argv = [self.cc, *self.cflags(), *extra_flags]
        for inc in include_dirs:
            argv += ["-I", str(inc)]
        argv += [str(s) for s in srcs] + ["-o", str(output), *self.ldflags(map_file, script)]
        return Command(tuple(argv), cwd=cwd, inputs=tuple(srcs), outputs=(output, map_file),
                       description=f"compile and link {output.name}")

    def disassemble(self, elf: Path) -> Command:
        return Command((self.objdump, "-d", "-S", "--no-show-raw-insn", str(elf)), description="disassemble")


def linker_script(memory_mb: int) -> str:
    """The shipped link.ld for a machine with `memory_mb` of RAM (the stack takes at most a quarter):
    a program that does not fit fails to link, instead of trapping on the simulator."""
    text, count = re.subn(r"LENGTH = \d+M", f"LENGTH = {memory_mb}M", (RUNTIME_DIR / "link.ld").read_text(), count=1)
    assert count == 1, "link.ld: no RAM LENGTH to set"
    return text


def multilib_dir(cpu: CpuSpec) -> str:
    """picolibc's multilib folder for this CPU; extensions beyond G/C share the rv64imafdc libraries."""
    base = cpu.march.split("_")[0]
    letters = base[4:].replace("g", "imafd")
    keep = "".join(c for c in "imafdc" if c in letters)
    return f"rv{cpu.xlen}{keep}/{cpu.mabi}"


@cache
def _libgcc_for(cpu: CpuSpec) -> str | None:
    gcc = shutil.which(DEBIAN_GCC)
    if gcc is None:
        return None
    base = cpu.march.split("_")[0]
    march = base[:4] + base[4:].replace("v", "")  # gcc 12 has no vector multilib; "rv" keeps its v
    res = Executor().run(
        Command((gcc, f"-march={march}", f"-mabi={cpu.mabi}", "-print-libgcc-file-name")), check=False
    )
    path = res.stdout.strip()
    return path if res.returncode == 0 and Path(path).is_file() else None


def find_toolchain(cpu: CpuSpec, spec: ToolchainSpec) -> Toolchain:
    """First the target's explicit compiler, then a $RISCV riscv-gnu-toolchain, then Debian's packages."""
    if spec.cc:
        cc = shutil.which(spec.cc)
        if cc is None:
            raise ToolNotFoundError(f"the target's toolchain.cc '{spec.cc}' was not found", hint=INSTALL_HINT)
        kind = "clang" if "clang" in Path(cc).name else "gcc"
        libc = spec.libc or ("picolibc" if kind == "clang" else "newlib")
        return Toolchain(kind, cc, libc, "target", _objdump_near(cc), cpu, spec,
                         _libgcc_for(cpu) if kind == "clang" else None)
    riscv = os.environ.get("RISCV")
    if riscv:
        for name, kind in (("riscv64-unknown-elf-gcc", "gcc"), ("riscv64-unknown-elf-clang", "clang")):
            candidate = Path(riscv) / "bin" / name
            if candidate.is_file() and os.access(candidate, os.X_OK):
                return Toolchain(kind, str(candidate), spec.libc or "newlib", "$RISCV", _objdump_near(str(candidate)),
                                 cpu, spec)
    if spec.libc not in (None, "picolibc"):  # never silently another C library than the target asks for
        raise ToolNotFoundError(f"the target asks for toolchain.libc '{spec.libc}', but Debian's RISC-V packages "
                                "provide picolibc only", hint="set toolchain.libc: picolibc (or leave it out), or "
                                "point $RISCV at a riscv-gnu-toolchain built with newlib")
    clang, lld = shutil.which("clang"), shutil.which("ld.lld")
    libgcc = _libgcc_for(cpu)
    if clang and lld and (PICOLIBC_DIR / "include").is_dir() and libgcc:
        return Toolchain("clang", clang, "picolibc", "debian", _objdump_near(clang), cpu, spec, libgcc)
    missing = [n for n, ok in (("clang", clang), ("ld.lld", lld), ("picolibc", (PICOLIBC_DIR / "include").is_dir()),
                                (DEBIAN_GCC + " (for libgcc)", libgcc)) if not ok]
    raise ToolNotFoundError(f"no RISC-V C toolchain found (missing: {', '.join(missing)})", hint=INSTALL_HINT)


def _objdump_near(cc: str) -> str:
    """The objdump that matches a compiler: a sibling with the same triple prefix, else llvm-objdump."""
    path = Path(cc)
    for name in ("riscv64-unknown-elf-objdump", "llvm-objdump"):
        sibling = path.with_name(name)
        if sibling.is_file():
            return str(sibling)
    return shutil.which("riscv64-unknown-elf-objdump") or shutil.which("llvm-objdump") or "objdump"
