"""The command line through click's CliRunner: every bad input is one `tvmx: error:` line plus a hint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from helpers import DATA, assert_error, relu_add_model, save, single_op_model, tvmx

from tvmx.errors import ExitCode
from tvmx.target import load_target
from tvmx.toolchain.command import Executor
from tvmx.toolchain.riscv import find_toolchain


def test_stages_lists_registry_in_order() -> None:
    result = tvmx("stages")
    assert result.exit_code == 0
    names = [line.split()[1] for line in result.stdout.splitlines()]
    assert names == ["import", "relax", "tune", "lower", "codegen", "assemble"]
    assert "alias: relay" in result.stdout


def test_targets_list_show_validate() -> None:
    listed = tvmx("targets", "list")
    assert listed.exit_code == 0 and "rv64gc" in listed.stdout and "rv64gcv" in listed.stdout
    shown = tvmx("targets", "show", "rv64gcv")
    assert shown.exit_code == 0 and "march: rv64gcv" in shown.stdout
    ok = tvmx("targets", "validate", str(load_target("rv64gc").path))
    assert ok.exit_code == 0
    bad = tvmx("targets", "validate", str(DATA / "targets" / "invalid_march.yaml"))
    assert bad.exit_code == ExitCode.USER_ERROR
    assert "invalid_march.yaml: $.cpu.march" in bad.stderr


def test_missing_model_file(tmp_path: Path) -> None:
    assert_error(tvmx("compile", str(tmp_path / "none.onnx"), "-t", "rv64gc"), ExitCode.USER_ERROR,
                 "model file not found")


def test_not_an_onnx_file(tmp_path: Path) -> None:
    bad = tmp_path / "model.onnx"
    bad.write_text("definitely not protobuf \xff")
    assert_error(tvmx("compile", str(bad), "-t", "rv64gc"), ExitCode.USER_ERROR, "not an ONNX model")


def test_unsupported_op(tmp_path: Path) -> None:
    model = save(single_op_model("Frobnicate", domain="com.example"), tmp_path / "m.onnx")
    assert_error(tvmx("compile", str(model), "-t", "rv64gc", "-o", str(tmp_path / "b")), ExitCode.USER_ERROR,
                 "unsupported operator 'Frobnicate'", "node 'my_frobnicate'")
    assert not (tmp_path / "b" / "model.elf").exists()


def test_dynamic_shape_without_input_shape(tmp_path: Path) -> None:
    model = save(relu_add_model(["n", 4]), tmp_path / "m.onnx")
    assert_error(tvmx("compile", str(model), "-t", "rv64gc"), ExitCode.USER_ERROR, "dynamic shape")


def test_invalid_target_yaml(tmp_path: Path) -> None:
    model = save(relu_add_model([1, 4]), tmp_path / "m.onnx")
    assert_error(tvmx("compile", str(model), "-t", str(DATA / "targets" / "invalid_mabi_for_xlen.yaml")),
                 ExitCode.USER_ERROR, "invalid_mabi_for_xlen.yaml: $.cpu.mabi")


def test_unknown_target() -> None:
    assert_error(tvmx("targets", "show", "nonesuch"), ExitCode.USER_ERROR, "unknown target 'nonesuch'")


def test_bad_input_shape_option(tmp_path: Path) -> None:
    model = save(relu_add_model([1, 4]), tmp_path / "m.onnx")
    assert_error(tvmx("compile", str(model), "-t", "rv64gc", "--input-shape", "x=1,zero"), ExitCode.USER_ERROR,
                 "bad --input-shape")


def test_missing_toolchain(tmp_path: Path) -> None:
    text = load_target("rv64gc").path.read_text().replace("toolchain:\n", "toolchain:\n  cc: tvmx-missing-cc\n")
    target = tmp_path / "nocc.yaml"
    target.write_text(text)
    model = save(relu_add_model([1, 4]), tmp_path / "m.onnx")
    build = tmp_path / "b"
    assert_error(tvmx("compile", str(model), "-t", str(target), "-o", str(build)), ExitCode.USER_ERROR,
                 "toolchain.cc 'tvmx-missing-cc' was not found")
    assert not (build / "model.elf").exists() and not (build / "06-assemble" / "model.elf").exists()


def test_usage_error_exit_code() -> None:
    assert_error(tvmx("compile"), ExitCode.USAGE, "Missing argument")


@pytest.mark.toolchain
def test_compile_to_stops_early_and_records_manifest(tmp_path: Path) -> None:
    model = save(relu_add_model([1, 4]), tmp_path / "m.onnx")
    result = tvmx("compile", str(model), "-t", "rv64gc", "-o", str(tmp_path / "b"), "--compile-to", "relay")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "b" / "02-relax" / "module.py").is_file()
    assert not (tmp_path / "b" / "03-tune").exists()


@pytest.mark.toolchain
@pytest.mark.parametrize(("stage", "needle"), [
    ("import", "R.nn.relu"), ("relay", "call_tir"), ("tune", "kernels"), ("tir", "T.prim_func"),
    ("c", "void fused_"), ("asm", "<main>:"),
])
def test_dump_ir(tmp_path: Path, stage: str, needle: str) -> None:
    model = save(relu_add_model([1, 4]), tmp_path / "m.onnx")
    result = tvmx("dump-ir", str(model), "-t", "rv64gc", "--stage", stage)
    assert result.exit_code == 0, result.output
    assert needle in result.stdout


def _compile_relu_add(tmp_path: Path) -> Path:
    """y = relu(x) + 0.5 compiled for rv64gc; returns the build directory."""
    model = save(relu_add_model([1, 4]), tmp_path / "m.onnx")
    build = tmp_path / "b"
    result = tvmx("compile", str(model), "-t", "rv64gc", "-o", str(build))
    assert result.exit_code == 0, result.output
    return build


def _build_c(tmp_path: Path, source: Path) -> Path:
    target = load_target("rv64gc")
    tc = find_toolchain(target.cpu, target.toolchain)
    elf = tmp_path / f"{source.stem}.elf"
    Executor().run(tc.build_elf([source], elf, map_file=tmp_path / "x.map"))
    return elf


@pytest.mark.toolchain
@pytest.mark.spike
def test_guest_trap_reports_cause_pc_and_symbol(tmp_path: Path) -> None:
    elf = _build_c(tmp_path, DATA / "trap.c")
    result = tvmx("run", "--target", "rv64gc", str(elf))
    assert "about to trap" in result.stdout
    assert_error(result, ExitCode.GUEST_FAILURE, "illegal instruction", "mcause 2", "in bad_kernel+0x", "at pc 0x8")


@pytest.mark.toolchain
@pytest.mark.spike
def test_bare_elf_exit_code_and_console(tmp_path: Path) -> None:
    elf = _build_c(tmp_path, DATA / "exit7.c")
    out = tmp_path / "out"
    result = tvmx("run", "--target", "rv64gc", str(elf), "--output-dir", str(out))
    assert result.exit_code == 7
    assert "hello from the guest" in result.stdout
    stats = (out / "stats.json").read_text()
    assert '"instret"' in stats


@pytest.mark.toolchain
@pytest.mark.spike
def test_compile_run_with_npz_inputs(tmp_path: Path) -> None:
    build = _compile_relu_add(tmp_path)
    for name in ("manifest.json", "commands.sh", "model.elf", "06-assemble/model.map", "06-assemble/model.dis"):
        assert (build / name).is_file(), name
    x = np.array([[-1.0, 2.0, -3.0, 4.0]], np.float32)
    np.savez(tmp_path / "in.npz", x=x)
    result = tvmx("run", str(build), "--inputs", str(tmp_path / "in.npz"))
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(np.load(build / "run" / "y.npy"), np.maximum(x, 0) + 0.5)
    assert '"cycles"' in (build / "run" / "stats.json").read_text()
    # the same ELF with other inputs: no recompilation
    np.savez(tmp_path / "in2.npz", x=-x)
    again = tvmx("run", str(build), "--inputs", str(tmp_path / "in2.npz"), "--output-dir", str(tmp_path / "o"))
    assert again.exit_code == 0, again.output
    np.testing.assert_array_equal(np.load(tmp_path / "o" / "y.npy"), np.maximum(-x, 0) + 0.5)
    profiled = tvmx("run", str(build), "--profile")
    assert profiled.exit_code == 0 and "instret" in profiled.stdout and "fused_" in profiled.stdout
    profile = json.loads((build / "run" / "profile.json").read_text())
    stats = json.loads((build / "run" / "stats.json").read_text())
    assert profile["kernels"] and 0 < sum(k["instret"] for k in profile["kernels"]) <= stats["instret"]


@pytest.mark.toolchain
@pytest.mark.spike
def test_wrong_npz_inputs(tmp_path: Path) -> None:
    build = _compile_relu_add(tmp_path)
    np.savez(tmp_path / "in.npz", z=np.zeros((1, 4), np.float32))
    assert_error(tvmx("run", str(build), "--inputs", str(tmp_path / "in.npz")), ExitCode.USER_ERROR,
                 "no array named 'x'")


def test_doctor_reports_tools() -> None:
    result = tvmx("doctor")
    assert "C toolchain" in result.stdout and "spike" in result.stdout and "dtc" in result.stdout


@pytest.mark.toolchain
@pytest.mark.spike
def test_verify_exit_code_follows_tolerance(tmp_path: Path) -> None:
    from tvmx import samples

    model = tmp_path / "mlp.onnx"
    samples.onnx.save(samples.mlp(), str(model))
    ok = tvmx("verify", str(model), "-t", "rv64gc", "-o", str(tmp_path / "b"))
    assert ok.exit_code == 0, ok.output
    summary = [ln for ln in ok.stdout.splitlines() if ln.startswith("tvmx: verify")]
    assert len(summary) == 1 and "PASS" in summary[0] and "max abs err" in summary[0] and "max rel err" in summary[0]
    # float32 sums in another order are not bit-exact: zero tolerance must fail, reusing the build
    strict = tvmx("verify", str(model), "-t", "rv64gc", "-o", str(tmp_path / "b"), "--rtol", "0", "--atol", "0")
    assert_error(strict, ExitCode.MISMATCH, "differ from onnxruntime")
    assert "FAIL" in strict.stdout


@pytest.mark.toolchain
def test_dry_run_prints_commands_and_builds_nothing(tmp_path: Path) -> None:
    model = save(relu_add_model([1, 4]), tmp_path / "m.onnx")
    result = tvmx("compile", str(model), "-t", "rv64gc", "-o", str(tmp_path / "b"), "--dry-run")
    assert result.exit_code == 0, result.output
    assert "-march=rv64gc" in result.stdout
    assert not (tmp_path / "b" / "model.elf").exists()


@pytest.mark.toolchain
@pytest.mark.spike
@pytest.mark.parametrize("target_name", ["gemmini", "gemmini-8"])
def test_bare_elf_on_gemmini_reports_accelerator_stats(tmp_path: Path, target_name: str) -> None:
    from tvmx.accelerators import accelerator_for

    target = load_target(target_name)
    accel = accelerator_for(target)
    assert accel is not None
    tc = find_toolchain(target.cpu, target.toolchain)
    elf = tmp_path / "mm.elf"
    Executor().run(tc.build_elf([DATA / "gemmini_matmul.c"], elf, map_file=tmp_path / "mm.map",
                                include_dirs=accel.include_dirs(tmp_path)))
    out = tmp_path / "out"
    result = tvmx("run", "--target", target_name, str(elf), "--output-dir", str(out))
    assert result.exit_code == 0, result.output
    assert "0 mismatches" in result.stdout
    stats = json.loads((out / "stats.json").read_text())
    assert stats["macs"] == 33 * 24 * 40
    assert stats["cycles"] >= stats["instret"] > 0
    assert stats["execute_busy_cycles"] > 0 and stats["load_busy_cycles"] > 0


def _user_files(folder: Path) -> dict[str, str]:
    """A user's own files where a build goes: folders named like stage folders, and plain files."""
    files = {"2024-notes/a.txt": "mine", "01-mine/b.txt": "mine", "06-assemble/c.txt": "mine", "notes.txt": "mine"}
    for rel, text in files.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_text(text)
    return files


def _assert_intact(folder: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        assert (folder / rel).read_text() == text, rel


def test_compile_into_a_folder_of_user_files_is_refused_and_deletes_nothing(tmp_path: Path) -> None:
    build = tmp_path / "b"
    files = _user_files(build)
    # a missing model: refused before the folder is looked at
    assert_error(tvmx("compile", str(tmp_path / "none.onnx"), "-t", "rv64gc", "-o", str(build)),
                 ExitCode.USER_ERROR, "model file not found")
    model = save(relu_add_model([1, 4]), tmp_path / "m.onnx")
    assert_error(tvmx("compile", str(model), "-t", "rv64gc", "-o", str(build), "--compile-to", "relax"),
                 ExitCode.USER_ERROR, "did not create")
    _assert_intact(build, files)


@pytest.mark.toolchain
@pytest.mark.spike
def test_user_files_next_to_a_build_survive_every_command(tmp_path: Path) -> None:
    build = tmp_path / "b"
    files = _user_files(build)
    model = save(relu_add_model([1, 4]), tmp_path / "m.onnx")
    commands = [("compile", str(model), "-t", "rv64gc", "-o", str(build), "--force"),
                ("compile", str(model), "-t", "rv64gc", "-o", str(build)),  # a tvmx folder now: no --force
                ("run", str(build)),
                ("verify", str(model), "-t", "rv64gc", "-o", str(build)),
                ("compile", str(model), "-t", "rv64gc", "-o", str(build), "--opt-level", "1"),
                ("compile", str(model), "-t", "rv64gc", "-o", str(build), "--compile-to", "relax")]
    for argv in commands:
        result = tvmx(*argv)
        assert result.exit_code == 0, (argv, result.output)
        _assert_intact(build, files)
    # the last, partial compile removed the earlier build's later stages and run outputs: only tvmx's files
    assert not (build / "05-codegen").exists() and not (build / "run" / "y.npy").exists()
    assert (build / "06-assemble" / "c.txt").is_file() and not (build / "06-assemble" / "model.elf").exists()
