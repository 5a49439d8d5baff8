"""argv checks need no compiler: toolchains are data."""

from __future__ import annotations

from pathlib import Path

import pytest

from tvmx.errors import ToolNotFoundError
from tvmx.target.model import CpuSpec, ToolchainSpec
from tvmx.toolchain.riscv import RUNTIME_DIR, Toolchain, find_toolchain, multilib_dir


@pytest.mark.parametrize(("march", "mabi", "expected"), [
    ("rv64gc", "lp64d", "rv64imafdc/lp64d"),
    ("rv64gcv", "lp64d", "rv64imafdc/lp64d"),
    ("rv64imac", "lp64", "rv64imac/lp64"),
    ("rv32imafc_zicsr", "ilp32f", "rv32imafc/ilp32f"),
])
def test_multilib_dir(march: str, mabi: str, expected: str) -> None:
    assert multilib_dir(CpuSpec(march, mabi)) == expected


def test_clang_argv() -> None:
    cpu = CpuSpec("rv64gcv", "lp64d", True)
    tc = Toolchain("clang", "/usr/bin/clang", "picolibc", "debian", "objdump", cpu,
                   ToolchainSpec(cflags=("-O2",), clang_cflags=("-mllvm", "-x")), "/lib/libgcc.a")
    cmd = tc.build_elf([Path("m.c")], Path("m.elf"), map_file=Path("m.map"), include_dirs=(Path("inc"),))
    argv = list(cmd.argv)
    assert argv[0] == "/usr/bin/clang"
    for flag in ("--target=riscv64-unknown-elf", "-march=rv64gcv", "-mabi=lp64d", "-mcmodel=medany", "-mno-relax",
                 "-fuse-ld=lld", "-mllvm", "/lib/libgcc.a", str(RUNTIME_DIR / "crt0.S"), "m.c"):
        assert flag in argv
    assert argv[argv.index("-T") + 1] == str(RUNTIME_DIR / "link.ld")
    assert argv[argv.index("-o") + 1] == "m.elf"
    assert "-Wl,-Map=m.map" in argv


def test_gcc_argv_uses_gcc_flags_only() -> None:
    tc = Toolchain("gcc", "riscv64-unknown-elf-gcc", "newlib", "$RISCV", "objdump", CpuSpec("rv64gc", "lp64d"),
                   ToolchainSpec(clang_cflags=("-mllvm",), gcc_cflags=("-fgcc-only",)))
    argv = list(tc.build_elf([Path("m.c")], Path("m.elf"), map_file=Path("m.map")).argv)
    assert "-fgcc-only" in argv and "-mllvm" not in argv and "-mno-relax" not in argv
    assert "-lgcc" in argv


def test_explicit_compiler_missing() -> None:
    with pytest.raises(ToolNotFoundError) as info:
        find_toolchain(CpuSpec("rv64gc", "lp64d"), ToolchainSpec(cc="tvmx-no-such-cc"))
    assert "tvmx-no-such-cc" in info.value.message
    assert info.value.hint and "apt-get install" in info.value.hint


def test_riscv_env_is_searched_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    gcc = tmp_path / "bin" / "riscv64-unknown-elf-gcc"
    gcc.parent.mkdir()
    gcc.write_text("#!/bin/sh\n")
    gcc.chmod(0o755)
    monkeypatch.setenv("RISCV", str(tmp_path))
    tc = find_toolchain(CpuSpec("rv64gc", "lp64d"), ToolchainSpec())
    assert (tc.cc, tc.origin, tc.libc, tc.kind) == (str(gcc), "$RISCV", "newlib", "gcc")


@pytest.mark.parametrize(("kind", "extra"), [
    ("clang", ["-fdebug-compilation-dir=."]),
    ("gcc", ["-fdebug-prefix-map=/b/x=.", f"-fdebug-prefix-map={RUNTIME_DIR}=tvmx-runtime",
             "-fdebug-prefix-map=/h/gemmini=tvmx-include/gemmini"])])
def test_reproducible_flags_map_the_build_folder_and_shipped_folders_away(kind: str, extra: list[str]) -> None:
    tc = Toolchain(kind, kind, "picolibc", "target", "objdump", CpuSpec("rv64gc", "lp64d"), ToolchainSpec())
    assert tc.reproducible_flags(Path("/b/x"), {Path("/h/gemmini"): "tvmx-include/gemmini"}) == [
        "-ffile-prefix-map=/b/x=.", f"-ffile-prefix-map={RUNTIME_DIR}=tvmx-runtime",
        "-ffile-prefix-map=/h/gemmini=tvmx-include/gemmini", *extra]


def test_runtime_ships_inside_the_package() -> None:
    import tvmx

    assert Path(tvmx.__file__).resolve().parent / "runtime" == RUNTIME_DIR
    assert {"crt0.S", "htif.c", "string.c", "link.ld"} <= {p.name for p in RUNTIME_DIR.iterdir()}


@pytest.mark.toolchain
def test_libgcc_is_the_multilib_of_the_cpu() -> None:
    """Soft-float and other ABIs link gcc's runtime built for them (not the default rv64imafdc/lp64d one)."""
    from tvmx.toolchain.riscv import _libgcc_for

    assert _libgcc_for(CpuSpec("rv64imac", "lp64")).endswith("/rv64imac/lp64/libgcc.a")  # type: ignore[union-attr]
    assert _libgcc_for(CpuSpec("rv64gcv", "lp64d")) == _libgcc_for(CpuSpec("rv64gc", "lp64d"))
