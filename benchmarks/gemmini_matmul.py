"""Gemmini on the Spike model: int8 matmuls through gemmini.h's tiled_matmul_auto against the same
matmul in plain C on the CPU, and the simulation-speed cost of accelerator commands.

Run: .venv/bin/python benchmarks/gemmini_matmul.py [--target gemmini] [--sizes 64 128 256 512]
    [--loops both|on|off|default]
Everything in the table comes from one invocation; each row is one Spike run that does both
versions and checks that their outputs agree. --loops: the accelerator's commands issued by the
CPU (off), by the LOOP_WS unroller (on, targets with loops: [ws]), both as two rows per size
(the default where the target has LOOP_WS), or as the header's default tiling chooses.

--sweep N measures the tuning space of one N^3 matmul (Gemmini.tuning_space, what `tvmx tune`
tries, at most --candidates of it) in one Spike run, every result checked against the default's:
the default tiling, the best candidate, and the default and best tilings in WS and in OS.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import resource
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tvmx.accelerators import accelerator_for  # noqa: E402
from tvmx.accelerators.gemmini import Gemmini  # noqa: E402
from tvmx.accelerators.gemmini_tiling import FLOW_NAMES, FLOW_WS, MatmulTiling  # noqa: E402
from tvmx.errors import TvmxError  # noqa: E402
from tvmx.simulator.guest import check_exit  # noqa: E402
from tvmx.simulator.spike import Spike  # noqa: E402
from tvmx.target import load_target  # noqa: E402
from tvmx.toolchain.command import Executor  # noqa: E402
from tvmx.toolchain.riscv import find_toolchain  # noqa: E402

SRC = Path(__file__).resolve().parent / "gemmini"
RESULT_RE = re.compile(r"RESULT (.*)")


class Bench:
    def __init__(self, target_name: str, workdir: Path) -> None:
        self.target = load_target(target_name)
        acc = accelerator_for(self.target)
        if not isinstance(acc, Gemmini):
            raise SystemExit(f"{target_name} is not a Gemmini target")
        self.gemmini = acc
        self.workdir = workdir
        self.executor = Executor(log_path=workdir / "commands.sh")
        self.toolchain = find_toolchain(self.target.cpu, self.target.toolchain)
        self.extras = acc.simulator_extras(workdir, self.executor)
        self.includes = acc.include_dirs(workdir)
        self.spike = Spike(self.target.simulator, extlibs=self.extras.extlibs, extension=self.extras.extension)

    def build(self, source: Path, name: str, defines: tuple[str, ...]) -> Path:
        elf = self.workdir / f"{name}.elf"
        cmd = self.toolchain.build_elf([source], elf, map_file=elf.with_suffix(".map"), include_dirs=self.includes,
                                       extra_flags=tuple(f"-D{d}" for d in defines))
        self.executor.run(cmd)
        return elf

    def run(self, elf: Path) -> tuple[str, float]:
        """Console output and Spike's CPU time (user + sys: steadier than wall time on a shared box)."""
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        res = self.executor.run(self.spike.command(elf, env=self.extras.env), check=False, timeout=1800)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        check_exit(res.returncode, res.stdout, elf)
        return res.stdout, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


LOOP_MODES = {"off": (0,), "on": (1,), "both": (0, 1), "default": (None,)}


def matmul_table(bench: Bench, sizes: list[int], loops: str) -> None:
    dim = bench.gemmini.config.dim
    modes = LOOP_MODES[loops]
    if not bench.gemmini.config.has_loop_ws and 1 in modes:
        if loops == "on":
            raise SystemExit(f"{bench.target.name} has no LOOP_WS (accelerator.loops)")
        modes = (0,)
    print(f"int8 matmul, {bench.target.name} (DIM {dim}), tiled_matmul (auto tiling) vs plain C on rv64gc")
    head = f"{'size':>5} {'tiles(i,j,k)':>12} {'issued by':>9} {'cycles':>12} {'util':>6} {'cpu instret':>13} " \
           f"{'speedup':>8} {'load':>6} {'exec':>6} {'store':>6} {'stall':>6} {'issue':>6} {'cpu s':>6}"
    print(head)
    print("-" * len(head))
    for n, hw in ((n, hw) for n in sizes for hw in modes):
        defines = (f"SIZE={n}",) if hw is None else (f"SIZE={n}", f"HW_LOOP={hw}")
        out, wall = bench.run(bench.build(SRC / "matmul_bench.c", f"matmul_{n}_{hw}", defines))
        m = RESULT_RE.search(out)
        if m is None:
            raise SystemExit(f"no RESULT line for size {n}:\n{out}")
        r = dict(kv.split("=") for kv in m.group(1).split())
        cycles, cpu = int(r["cycles"]), int(r["cpu_instret"])
        if r["mismatches"] != "0":
            raise SystemExit(f"size {n}: accelerator and CPU results differ in {r['mismatches']} elements")
        util = n**3 / (dim * dim * cycles)

        def share(key: str, r: dict[str, str] = r, cycles: int = cycles) -> str:
            return f"{int(r[key]) / cycles:6.0%}"

        issuer = "LOOP_WS" if r["hw_loop"] == "1" else "CPU"
        print(f"{n:>5} {r['tile']:>12} {issuer:>9} {cycles:>12,} {util:6.1%} {cpu:>13,} {cpu / cycles:7.1f}x "
              f"{share('load')} {share('exec')} {share('store')} {share('stall')} {share('accel_instret')} {wall:6.1f}")
    print("util = MACs / (DIM^2 x cycles); speedup = CPU instret (1 IPC) / modelled cycles;\n"
          "load/exec/store = unit busy / cycles; stall = CPU stall / cycles; "
          "issue = CPU instructions retired in the region / cycles")


TILING_RE = re.compile(r"TILING (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) cycles=(\d+) mismatches=(\d+)")


def sweep_cycles(bench: Bench, n: int, tilings: list[MatmulTiling], bias: bool = True) -> list[int]:
    """Cycles of an n^3 matmul (with a non-zero per-column bias, or none) under each tiling, in one
    Spike run (tiling_sweep.c); every result must equal the first tiling's."""
    body = ",\n".join("{" + ", ".join(map(str, dataclasses.astuple(t))) + "}" for t in tilings)
    (bench.workdir / "sweep_tilings.h").write_text(
        f"#define SWEEP_M {n}\n#define SWEEP_N {n}\n#define SWEEP_K {n}\n#define SWEEP_BIAS {int(bias)}\n"
        f"static const gemmini_tiling TILINGS[] = {{{body}}};\n")
    includes, bench.includes = bench.includes, (bench.workdir, *bench.includes)
    try:
        out, _ = bench.run(bench.build(SRC / "tiling_sweep.c", f"sweep_{n}", ()))
    finally:
        bench.includes = includes
    rows = [m.groups() for m in TILING_RE.finditer(out)]
    if len(rows) != len(tilings) or any(r[7] != "0" for r in rows):
        raise SystemExit(f"sweep {n}: missing results or a tiling whose result differs:\n{out}")
    return [int(r[6]) for r in rows]


def sweep_table(bench: Bench, n: int, limit: int) -> None:
    from tvmx.toolchain.command import Executor

    space = bench.gemmini.tuning_space("matmul", {"M": n, "N": n, "K": n}, "sweep", Executor())[:limit]
    tilings = [MatmulTiling(*s.args) for s in space]
    default = tilings[0]
    cycles = sweep_cycles(bench, n, tilings)
    best = min(range(len(tilings)), key=lambda i: cycles[i])
    flows = [(f"{what}, {FLOW_NAMES[f]}", dataclasses.replace(t, dataflow=f, hw_loop=t.hw_loop * (f == FLOW_WS)))
             for what, t in (("default", default), ("best", tilings[best])) for f in bench.gemmini.flows]
    flow_cycles = sweep_cycles(bench, n, [t for _, t in flows])
    dim = bench.gemmini.config.dim

    def line(what: str, t: MatmulTiling, c: int) -> str:
        return f"  {what:<24} {t.describe():<36} {c:>11,} cycles  {n ** 3 / (dim * dim * c):6.1%} of peak"

    print(f"\ntuning space of a {n}^3 int8 matmul on {bench.target.name} (DIM {dim}): {len(tilings)} candidates "
          f"measured, all bit-identical to the default")
    print(line("default", default, cycles[0]))
    print(line(f"best (candidate {best})", tilings[best], cycles[best]))
    for (what, t), c in zip(flows, flow_cycles, strict=True):
        print(line(what, t, c))
    ranked = sorted(cycles)
    print(f"  best of the first 8 / 32 / 64 candidates: {min(cycles[:8]):,} / {min(cycles[:32]):,} / "
          f"{min(cycles[:64]):,}; median {ranked[len(ranked) // 2]:,}, worst {ranked[-1]:,}")


def speed_ratio(bench: Bench, repeats: int) -> None:
    with_acc = bench.build(SRC / "speed.c", "speed_accel", ())
    without = bench.build(SRC / "speed.c", "speed_noaccel", ("NO_ACCEL",))
    empty = bench.build(SRC / "speed.c", "speed_empty", ("EMPTY",))
    times: dict[Path, list[float]] = {with_acc: [], without: [], empty: []}
    for _ in range(repeats):  # interleaved, best of each: other load on the machine hits all alike
        for elf in times:
            times[elf].append(bench.run(elf)[1])
    t_acc, t_base, t_empty = (min(v) for v in times.values())
    print("\nspeed: 1e6 accelerator commands (preload/compute on full tiles, mvin+mvout every 8 computes)")
    print(f"  Spike CPU time, best of {repeats}: with commands {t_acc:.3f} s, commands removed {t_base:.3f} s, "
          f"empty main {t_empty:.3f} s (start-up)")
    print(f"  ratio {t_acc / t_base:.2f} (requirement <= 2); without start-up "
          f"{(t_acc - t_empty) / max(t_base - t_empty, 1e-3):.1f}; "
          f"~{(t_acc - t_base) * 1e3:.0f} ns per command")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", default="gemmini")
    ap.add_argument("--sizes", type=int, nargs="+", default=[64, 128, 256, 512])
    ap.add_argument("--repeats", type=int, default=5, help="runs of each speed program (best is kept)")
    ap.add_argument("--workdir", type=Path, help="keep the ELFs and commands.sh here")
    ap.add_argument("--sweep", type=int, metavar="N", help="only measure the tuning space of an N^3 matmul")
    ap.add_argument("--candidates", type=int, default=512, help="candidates of the space measured by --sweep")
    ap.add_argument("--loops", choices=list(LOOP_MODES), default="both",
                    help="who issues the accelerator's commands: the CPU, LOOP_WS, both (two rows), the default")
    args = ap.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tvmx-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        bench = Bench(args.target, workdir)
        if args.sweep:
            sweep_table(bench, args.sweep, args.candidates)
            return 0
        matmul_table(bench, args.sizes, args.loops)
        speed_ratio(bench, args.repeats)
    except TvmxError as exc:
        print(f"error: {exc.message}" + (f"\n  hint: {exc.hint}" if exc.hint else ""), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
