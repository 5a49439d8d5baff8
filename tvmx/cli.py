"""The `tvmx` command line: a thin layer over the Python API. Errors surface in exactly one place,
`TvmxGroup.main`, as `tvmx: error: ...` plus a hint; tracebacks only with -v."""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path
from typing import Any

import click
import numpy as np

from tvmx import __version__, ui
from tvmx.errors import ExitCode, GuestError, MismatchError, TvmxError
from tvmx.options import Options, make_options, parse_input_shapes
from tvmx.stages.registry import STAGES, find_stage, stage_names
from tvmx.target import list_targets, load_target
from tvmx.target.loader import read_target_data

STATE = {"verbose": False}


def _echo(msg: str) -> None:
    click.echo(msg, err=True)


def _options(**cli: Any) -> Options:
    shapes = parse_input_shapes(cli.pop("input_shape", ()) or ())
    return make_options(cli.pop("config", None), input_shapes=shapes or None, **cli)


def _set_verbose(_ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    STATE["verbose"] = STATE["verbose"] or value


verbose_option = click.option("-v", "--verbose", is_flag=True, expose_value=False, callback=_set_verbose,
                              is_eager=True, help="show progress, stage timings and tracebacks")


# Options shared by the commands that compile.
def compile_options(f: Any) -> Any:
    f = verbose_option(f)
    f = click.option("--target", "-t", "target", required=True, help="target name (targets/) or YAML path")(f)
    f = click.option("--config", help="pipeline preset: name in configs/ or a YAML path")(f)
    f = click.option("--input-shape", multiple=True, metavar="NAME=D0,D1,...",
                     help="static shape for a dynamic model input (repeatable)")(f)
    f = click.option("--opt-level", type=click.IntRange(0, 3), default=None, help="C optimisation level")(f)
    f = click.option("--records", type=click.Path(path_type=Path), default=None,
                     help="tuning records folder of `tvmx tune` (default: ~/.cache/tvmx/records)")(f)
    return f


class TvmxGroup(click.Group):
    """The one place TvmxErrors become `tvmx: error:` lines and exit codes (also under CliRunner)."""

    def main(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        kwargs["standalone_mode"] = False
        try:
            super().main(*args, **kwargs)
        except click.exceptions.Exit as exc:
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"tvmx: error: {exc.format_message()}", err=True)
            click.echo("  hint: see `tvmx --help` or `tvmx COMMAND --help`", err=True)
            sys.exit(ExitCode.USAGE)
        except click.exceptions.Abort:
            sys.exit(130)
        except TvmxError as exc:
            if STATE["verbose"]:
                traceback.print_exc()
            click.echo(f"tvmx: error: {exc.message}", err=True)
            if exc.hint:
                click.echo(f"  hint: {exc.hint}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            sys.exit(130)
        except Exception as exc:  # a bug in tvmx: say so, keep the traceback for -v
            if STATE["verbose"]:
                traceback.print_exc()
            click.echo(f"tvmx: error: internal error: {exc.__class__.__name__}: {exc}", err=True)
            click.echo("  hint: this is a bug in tvmx; rerun with -v for the traceback and report it", err=True)
            sys.exit(ExitCode.INTERNAL)
        sys.exit(ExitCode.OK)


@click.group(cls=TvmxGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="show progress, stage timings and tracebacks")
@click.version_option(__version__, prog_name="tvmx")
def cli(verbose: bool) -> None:
    """Compile ONNX models to bare-metal RISC-V ELFs (optionally driving a RoCC accelerator),
    run them on Spike and check them against onnxruntime."""
    STATE["verbose"] = verbose


@cli.command("stages")
def stages_cmd() -> None:
    """List the compilation stages in order."""
    for s in STAGES:
        alias = f" (alias: {', '.join(s.aliases)})" if s.aliases else ""
        click.echo(f"{s.index}. {s.name:<9} {s.description}{alias}  -> {s.produces}")


@cli.command("compile")
@click.argument("model", type=click.Path(path_type=Path))
@ui.json_option
@compile_options
@click.option("-o", "--output", "build_dir", type=click.Path(path_type=Path), help="build directory")
@click.option("--compile-to", type=click.Choice(stage_names()), help="stop after this stage")
@click.option("--compile-from", type=click.Choice(stage_names()),
              help="resume at this stage, reusing the earlier stages of the build in the folder")
@click.option("--rebuild", is_flag=True, help="run every stage, even where the build is up to date")
@click.option("--depfile", type=click.Path(path_type=Path),
              help="write a make rule: the ELF depends on every file the build read")
@click.option("--dry-run", is_flag=True, help="print external commands instead of running them")
@click.option("--force", is_flag=True, help="build into a folder holding files tvmx did not create (none is deleted)")
def compile_cmd(model: Path, target: str, build_dir: Path | None, compile_to: str | None, compile_from: str | None,
                rebuild: bool, depfile: Path | None, dry_run: bool, force: bool, **opts: Any) -> None:
    """Compile MODEL.onnx for a target into BUILD_DIR/model.elf. An up-to-date build is left as it is
    (nothing is written); a changed one resumes at the first stage whose inputs changed, where it can."""
    from tvmx.build.depfile import check_depfile, write_depfile
    from tvmx.pipeline import build_inputs, compile_model

    if rebuild and compile_from:
        raise click.UsageError("--rebuild runs every stage: it cannot be given with --compile-from")
    if depfile is not None:
        check_depfile(depfile)
    tgt = load_target(target)
    options = _options(**opts)
    stage = find_stage(compile_to) if compile_to else None
    with ui.StageProgress([s.name for s in STAGES], STATE["verbose"], _echo) as progress:
        result = compile_model(model, tgt, options, build_dir, compile_to=stage,
                               compile_from=find_stage(compile_from) if compile_from else None, reuse=not rebuild,
                               dry_run=dry_run, force=force, log=progress.log)
    if depfile is not None and result.last_stage is STAGES[-1] and not dry_run:
        write_depfile(depfile, result.build_dir / "model.elf", build_inputs(model, tgt, options))
    ui.result(_compile_doc(model, tgt.name, result, dry_run))
    if result.reused:
        click.echo(f"tvmx: {result.build_dir / 'model.elf'} is up to date")
        return
    _print_offload_summary(result.build_dir)
    what = "model.elf" if result.last_stage is STAGES[-1] else f"stages up to {result.last_stage.name}"
    resumed = f", resumed at {result.resumed_at.name}" if result.resumed_at else ""
    click.echo(f"tvmx: compiled {model.name} for {tgt.name} in {result.seconds:.2f} s: "
               f"{result.build_dir / 'model.elf' if what == 'model.elf' else result.build_dir} ({what}{resumed})")


def _compile_doc(model: Path, target: str, result: Any, dry_run: bool) -> dict[str, Any]:
    """compile --json: where the build is, what ran, and the offload report's counts."""
    done = result.last_stage is STAGES[-1] and not dry_run
    path = result.build_dir / "02-relax" / "offload.json"
    offload = json.loads(path.read_text()) if path.is_file() and not dry_run else None
    return {"model": str(model), "target": target, "build_dir": str(result.build_dir),
            "elf": str(result.build_dir / "model.elf") if done else None, "last_stage": result.last_stage.name,
            "seconds": round(result.seconds, 3), "reused": result.reused, "dry_run": dry_run,
            "resumed_at": result.resumed_at.name if getattr(result, "resumed_at", None) else None,
            "offload": {k: offload[k] for k in ("accelerator", "offloaded", "candidates") if k in offload}
            if offload else None}


def _print_offload_summary(build_dir: Path) -> None:
    path = build_dir / "02-relax" / "offload.json"
    if not path.is_file() or STATE["verbose"]:  # verbose mode printed the whole report already
        return
    report = json.loads(path.read_text())
    click.echo(f"tvmx: {report['offloaded']} of {report['candidates']} candidate layers offloaded to "
               f"{report['accelerator']} (report: {path})")
    if report["offloaded"] == 0:
        click.echo("  hint: quantize the model first: tvmx quantize MODEL.onnx -o MODEL.int8.onnx "
                   "--random-calibration 16")
    elif ui.interactive():
        from tvmx.report.tables import offload_table

        ui.console().print(offload_table(report))


def _print_outputs(outputs: dict[str, np.ndarray]) -> None:
    with np.printoptions(precision=5, suppress=True, threshold=20, edgeitems=4):
        for name, arr in outputs.items():
            click.echo(f"{name} {arr.dtype}{list(arr.shape)}: {arr.ravel()}")


@cli.command("run")
@verbose_option
@click.argument("path", type=click.Path(path_type=Path))
@ui.json_option
@click.option("--target", "-t", "target", help="target (required for a bare ELF; default: the build's)")
@click.option("--inputs", type=click.Path(path_type=Path), help=".npz of inputs keyed by ONNX input name")
@click.option("--seed", type=int, default=None, help="random inputs from this seed (default 0)")
@click.option("--output-dir", type=click.Path(path_type=Path), help="where to write <output>.npy and stats.json")
@click.option("--timeout", type=float, help="seconds before the simulation is stopped")
@click.option("--profile", is_flag=True, help="print cycles, MACs and the roofline per kernel, costliest first")
def run_cmd(path: Path, target: str | None, inputs: Path | None, seed: int | None, output_dir: Path | None,
            timeout: float | None, profile: bool) -> None:
    """Run a build directory (or any bare-metal ELF with --target) on the target's simulator."""
    from tvmx.run.runner import load_inputs, read_io, run_build, run_elf
    from tvmx.simulator.guest import TRAP_HINT, parse_trap

    if path.is_file():
        if target is None:
            raise click.UsageError("running a bare ELF needs --target")
        # A bare ELF has no io.json or profile table: these flags would be silently ignored.
        given = [flag for flag, set_ in (("--inputs", inputs is not None), ("--seed", seed is not None),
                                         ("--profile", profile)) if set_]
        if given:
            raise click.UsageError(f"{', '.join(given)} only apply to a build directory, not to the bare ELF {path} "
                                   f"(compile a model with `tvmx compile` and run its build folder)")
        sim = run_elf(load_target(target), path, timeout=timeout)
        ui.result({"elf": str(path), "target": target, "exit_code": sim.returncode, "console": sim.console,
                   "stats": sim.stats})
        click.echo(sim.console, nl=False)
        if output_dir is not None:
            output_dir.mkdir(parents=True, exist_ok=True)
            (output_dir / "stats.json").write_text(json.dumps(sim.stats, indent=2) + "\n")
        trap = parse_trap(sim.console, path)
        if trap is not None:
            raise GuestError(trap.describe(), hint=TRAP_HINT, guest_exit_code=sim.returncode)
        sys.exit(sim.returncode)
    if not path.is_dir():
        raise TvmxError(f"{path}: no such build directory or ELF file", hint="pass BUILD_DIR or a .elf")
    tgt = load_target(target or _build_target(path))
    io = read_io(path) if (path / "io.json").is_file() else {"inputs": []}  # run_build says what is missing
    result = run_build(tgt, path, load_inputs(io, inputs, seed), output_dir, timeout=timeout, chart=profile)
    ui.result({"build_dir": str(path), "target": tgt.name, "outputs": _outputs_doc(result.outputs, result.files),
               "stats": result.stats, "files": [str(f) for f in result.files],
               "profile": result.profile.to_json() if result.profile else None})  # run/profile.json's
    _print_outputs(result.outputs)
    if profile:
        _print_profile(result.profile)
    stats = ", ".join(f"{k}={v}" for k, v in result.stats.items())
    click.echo(f"tvmx: ran on {tgt.name}: {stats}; outputs in {result.files[0].parent}")


def _outputs_doc(outputs: dict[str, np.ndarray], files: list[Path], limit: int = 4096) -> dict[str, Any]:
    """--json: each output's dtype, shape, .npy file and (up to `limit` elements) its values."""
    npy = {f.stem: str(f) for f in files if f.suffix == ".npy"}
    return {name: {"dtype": str(arr.dtype), "shape": list(arr.shape), "file": npy.get(_safe_name(name)),
                   "values": arr.tolist() if arr.size <= limit else None} for name, arr in outputs.items()}


def _safe_name(name: str) -> str:
    from tvmx.run.runner import safe_name

    return safe_name(name)


def _print_profile(profile: Any) -> None:
    from tvmx.run.display import profile_table

    if profile is not None:
        ui.console().print(profile_table(profile))


def _build_target(build_dir: Path) -> str:
    try:
        manifest = json.loads((build_dir / "manifest.json").read_text())
        return str(manifest["target_path"])
    except (OSError, ValueError, KeyError):
        raise TvmxError(f"{build_dir}: cannot tell which target it was built for",
                        hint="pass --target, or recompile with `tvmx compile`") from None


@cli.command("verify")
@click.argument("models", nargs=-1, required=True, type=click.Path(path_type=Path))
@ui.json_option
@compile_options
@click.option("--inputs", type=click.Path(path_type=Path), help=".npz of inputs keyed by ONNX input name")
@click.option("--seed", type=int, default=None, help="random inputs from this seed (default 0)")
@click.option("-o", "--output", "build_dir", type=click.Path(path_type=Path), help="build directory")
@click.option("--rtol", type=float, help="relative tolerance (default: the target's)")
@click.option("--atol", type=float, help="absolute tolerance (default: the target's)")
@click.option("--force", is_flag=True, help="build into a folder holding files tvmx did not create (none is deleted)")
@click.option("--junit", type=click.Path(path_type=Path), metavar="FILE",
              help="also write the results as JUnit XML: one test case per model output")
def verify_cmd(models: tuple[Path, ...], target: str, inputs: Path | None, seed: int | None, build_dir: Path | None,
               force: bool, junit: Path | None, **opts: Any) -> None:
    """Compile (or reuse an up-to-date build), run, and compare every output with onnxruntime.
    Several MODELS make one test suite: each is verified (into its default build folder) even if
    another fails."""
    from tvmx.verify.flow import VerifyReport, verify_models
    from tvmx.verify.junit import junit_xml

    if len(models) > 1:
        given = [flag for flag, set_ in (("-o/--output", build_dir is not None), ("--inputs", inputs is not None))
                 if set_]
        if given:
            raise click.UsageError(f"{', '.join(given)} name one model's folder or inputs: give one model with them")
    tgt = load_target(target)
    options = _options(**opts)

    verified: dict[str, dict[str, Any]] = {}  # for --json, by model stem

    def show(model: Path, report: VerifyReport) -> None:
        verified[model.stem] = {"build_dir": str(report.build_dir), "ok": report.comparison.ok,
                                "summary": report.comparison.summary(),
                                "outputs": [dict(o.__dict__) for o in report.comparison.outputs],
                                "stats": report.stats, "reused": report.reused}
        progress.pause()
        _print_outputs(report.outputs)
        click.echo(f"tvmx: verify {model.name} on {tgt.name}: {report.comparison.summary()}; "
                   f"instret={report.stats.get('instret')} cycles={report.stats.get('cycles')}")
        if ui.interactive():
            from tvmx.report.tables import verify_table

            ui.console().print(verify_table(model.name, tgt.name, report.comparison))

    with ui.StageProgress([s.name for s in STAGES], STATE["verbose"], _echo) as progress:
        results = verify_models(list(models), tgt, options, build_dir, inputs=inputs, seed=seed, force=force,
                                log=progress.log, on_report=show)
    if junit is not None:
        _write_file(junit, junit_xml([r for r, _ in results]))
    ui.result({"target": tgt.name, "ok": all(e is None and r.comparison is not None and r.comparison.ok
                                             for r, e in results),
               "models": [{"model": str(m), **verified.get(r.model, {"ok": False}), "error": r.error}
                          for m, (r, _) in zip(models, results, strict=True)]})
    errors = [(r, e) for r, e in results if e is not None]
    for r, _ in errors[1:]:  # the first is raised below, as the one `tvmx: error:` line
        click.echo(f"tvmx: verify {r.model} on {tgt.name}: ERROR: {r.error}", err=True)
    if errors:
        raise errors[0][1]  # type: ignore[misc]
    failed = [r.model for r, _ in results if r.comparison is not None and not r.comparison.ok]
    if failed:
        which = f" ({', '.join(failed)})" if len(models) > 1 else ""
        raise MismatchError(f"outputs differ from onnxruntime beyond the tolerance{which}",
                            hint="loosen --rtol/--atol if the difference is expected rounding")


def _write_file(path: Path, data: bytes) -> None:
    """A result file the user named (not part of a build folder), written atomically."""
    from tvmx.build.builddir import atomic_write

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)
    except OSError as exc:
        raise TvmxError(f"cannot write {path}: {exc.strerror}", hint="check the folder exists and is writable") from exc


@cli.command("tune")
@click.argument("model", type=click.Path(path_type=Path))
@compile_options
@click.option("--trials", type=click.IntRange(1), default=64, show_default=True,
              help="measurements in all, every kernel's default included (MetaSchedule's max_trials_global)")
@click.option("-j", "--jobs", type=click.IntRange(1), default=1, show_default=True,
              help="candidates measured at once, in local processes")
@click.option("--cluster", metavar="ADDRESS", help="measure on a Dask distributed cluster (tcp://HOST:PORT)")
@click.option("--timeout", type=float, default=120.0, show_default=True, help="seconds per candidate run")
@click.option("--only", metavar="NAME-GLOB", help="tune only the kernels whose names match")
@click.option("--seed", type=int, default=1, show_default=True, help="seed of the search")
@click.option("--json", "as_json", is_flag=True, help="print the result as one JSON document on stdout")
def tune_cmd(model: Path, target: str, trials: int, jobs: int, cluster: str | None, timeout: float,
             only: str | None, seed: int, as_json: bool, **opts: Any) -> None:
    """Search schedules for every kernel of MODEL with MetaSchedule, each candidate measured on the
    target's simulator; `tvmx compile` then applies the best record of each kernel."""
    from tvmx.tune.display import Progress, summary
    from tvmx.tune.tuner import TuneOptions, tune_model

    if cluster is not None and jobs != 1:
        raise click.UsageError("give -j (local processes) or --cluster (a Dask cluster), not both")
    tgt = load_target(target)
    options = _options(**opts)
    tune_options = TuneOptions(trials=trials, records=options.records, jobs=jobs, cluster=cluster, timeout=timeout,
                               only=only, seed=seed)
    progress = Progress(trials, quiet=as_json and not STATE["verbose"])
    try:
        report = tune_model(model, tgt, options, tune_options, progress.update, progress.start)
    finally:
        progress.stop()
    if as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        summary(report, ui.console())


@cli.command("quantize")
@verbose_option
@click.argument("model", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), required=True, help="QDQ int8 model to write")
@click.option("--target", "-t", "target", help="target whose accelerator the settings must suit")
@click.option("--calibration", type=click.Path(path_type=Path), help=".npz of calibration inputs by name")
@click.option("--random-calibration", type=click.IntRange(1), help="calibrate on N random (seeded) inputs")
@click.option("--seed", type=int, default=0, help="seed for --random-calibration")
@click.option("--per-channel/--per-tensor", default=None, help="weight scales (default: per tensor)")
def quantize_cmd(model: Path, output: Path, target: str | None, calibration: Path | None,
                 random_calibration: int | None, seed: int, per_channel: bool | None) -> None:
    """Quantize a float model to QDQ int8 with onnxruntime (symmetric int8 activations and weights)."""
    from tvmx.quantize import quantize_model

    if calibration is not None and random_calibration is not None:
        raise click.UsageError("give --calibration or --random-calibration, not both")
    info = quantize_model(model, output, load_target(target) if target else None, calibration=calibration,
                          random_n=random_calibration, seed=seed, per_channel=per_channel)
    click.echo(f"tvmx: quantized {model.name} -> {output} ({info['samples']} calibration samples, "
               f"{'per-channel' if info['per_channel'] else 'per-tensor'} weights, "
               f"{info['quantize_nodes']} QuantizeLinear, {info['dequantize_nodes']} DequantizeLinear"
               + (f"; {info['exact_adds']} of {info['int8_adds']} int8 adds exact on the accelerator, "
                  f"{info['rescaled_adds']} by moving their scales" if info["int8_adds"] else "")
               + (f"; Concats given one scale with their inputs: {info['shared_concats']}"
                  if info["shared_concats"] else "") + ")")


@cli.command("dump-ir")
@click.argument("model", type=click.Path(path_type=Path))
@compile_options
@click.option("--stage", "stage_name", required=True,
              type=click.Choice(["import", "relax", "relay", "tune", "tir", "c", "asm"]), help="which IR")
@click.option("-o", "--output", type=click.Path(path_type=Path), help="write to FILE instead of stdout")
def dump_ir_cmd(model: Path, target: str, stage_name: str, output: Path | None, **opts: Any) -> None:
    """Print the IR of one stage of MODEL for a target."""
    from tvmx.dump import dump_ir

    text = dump_ir(model, load_target(target), _options(**opts), stage_name)
    if output:
        output.write_text(text)
    else:
        click.echo(text, nl=False)


@cli.command("report")
@click.argument("build_dir", type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="write here (default: BUILD_DIR/report.html)")
def report_cmd(build_dir: Path, output: Path | None) -> None:
    """Write one self-contained HTML page about a build: target, stage timings, offload report,
    profile (after `tvmx run BUILD_DIR --profile`), ELF size, links to every stage's IR."""
    from tvmx.report.html import write_report

    click.echo(f"tvmx: report written to {write_report(build_dir, output)}")


@cli.group("targets")
def targets_group() -> None:
    """List, show and validate target descriptions."""


@targets_group.command("list")
def targets_list() -> None:
    for path in list_targets():
        try:
            t = load_target(str(path))
            click.echo(f"{t.name:<14} {t.description}  ({path})")
        except TvmxError as exc:
            click.echo(f"{path.stem:<14} INVALID: {exc.message}")


@targets_group.command("show")
@click.argument("target")
@ui.json_option
def targets_show(target: str) -> None:
    t = load_target(target)
    ui.result({"name": t.name, "path": str(t.path), "description": t.description, "target": t.raw})
    if ui.json_mode():
        return
    click.echo(f"# {t.path}")
    click.echo(t.path.read_text(), nl=False)


@targets_group.command("validate")
@click.argument("files", nargs=-1, required=True)
def targets_validate(files: tuple[str, ...]) -> None:
    """Validate target files; exits non-zero if any is invalid."""
    bad = 0
    for f in files:
        try:
            read_target_data(Path(f))
            click.echo(f"{f}: ok")
        except TvmxError as exc:
            bad += 1
            click.echo(f"tvmx: error: {exc.message}", err=True)
    if bad:
        sys.exit(ExitCode.USER_ERROR)


@cli.command("doctor")
@click.option("--target", "-t", "target", default="rv64gc", help="target whose toolchain to look for")
def doctor_cmd(target: str) -> None:
    """Say which toolchain and simulator tvmx finds, with versions, and how to install what is missing."""
    from tvmx.doctor import run_checks

    checks = run_checks(load_target(target))
    for c in checks:
        mark = "ok  " if c.ok else "MISSING"
        click.echo(f"[{mark}] {c.name}: {c.detail}")
        if not c.ok and c.fix:
            click.echo(f"         fix: {c.fix}")
    if not all(c.ok for c in checks):
        sys.exit(ExitCode.USER_ERROR)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point."""
    cli.main(args=argv, prog_name="tvmx")
