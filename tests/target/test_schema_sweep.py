"""Every field of the target schema takes effect: for each leaf the schema defines, a variant of a
shipped target that changes only that field (with what the change needs to stay valid) validates,
and then changes what tvmx builds or runs, or is refused. A field the sweep does not know fails the
test, so a new field cannot be validated and then read by nothing."""

from __future__ import annotations

import copy
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import yaml
from helpers import tvmx as cli

from tvmx import samples
from tvmx.errors import TvmxError
from tvmx.options import Options
from tvmx.pipeline import build_key, compile_model
from tvmx.quantize import quantize_model
from tvmx.run.runner import load_inputs, run_build
from tvmx.target import load_target
from tvmx.target.data import targets_dir
from tvmx.target.loader import schema
from tvmx.target.model import Target
from tvmx.verify.compare import compare

pytestmark = [pytest.mark.toolchain, pytest.mark.spike, pytest.mark.slow]

GCC = {"toolchain.cc": "riscv64-unknown-elf-gcc", "toolchain.libc": "picolibc"}
VECTOR = {"cpu.march": "rv64gcv", "simulator.isa": "rv64gcv_zicntr"}


@dataclass(frozen=True)
class Case:
    """`patch` (dotted paths; a list index as a number) applied to the shipped `target` after `base`,
    and the effect it must have against the target with `base` alone."""

    target: str
    effect: str  # refused | named | listed | elf | run | cycles | simulator | key | verify | error
    patch: dict[str, Any]
    base: dict[str, Any] = field(default_factory=dict)


SWEEP: dict[str, Case] = {
    "schema_version": Case("rv64gc", "refused", {"schema_version": 2}),
    "name": Case("rv64gc", "named", {"name": "renamed"}),
    "description": Case("rv64gc", "listed", {"description": "another core"}),
    "cpu.march": Case("rv64gc", "elf", VECTOR),
    "cpu.mabi": Case("rv64gc", "elf", {"cpu.march": "rv64imac", "cpu.mabi": "lp64",
                                       "simulator.isa": "rv64imac_zicntr"}),
    "cpu.vector": Case("rv64gc", "elf", {"cpu.vector": True}, base=VECTOR),
    "toolchain.cc": Case("rv64gc", "elf", GCC),
    "toolchain.libc": Case("rv64gc", "error", {"toolchain.libc": "newlib"}),
    "toolchain.cflags": Case("rv64gc", "elf", {"toolchain.cflags": ["-fno-inline"]}),
    "toolchain.clang_cflags": Case("rv64gc", "elf", {"toolchain.clang_cflags": ["-fno-inline"]}),
    "toolchain.gcc_cflags": Case("rv64gc", "elf", {"toolchain.gcc_cflags": ["-fno-inline"]}, base=GCC),
    "simulator.kind": Case("rv64gc", "refused", {"simulator.kind": "qemu"}),
    "simulator.isa": Case("rv64gc", "simulator", {"simulator.isa": "rv64gcv_zicntr"}),
    "simulator.memory_mb": Case("rv64gc", "elf", {"simulator.memory_mb": 64}),  # linked for that RAM
    "simulator.timeout_s": Case("rv64gc", "error", {"simulator.timeout_s": 0.001}),
    "simulator.extension.name": Case("gemmini", "refused", {"simulator.extension.name": "other"}),
    "simulator.extension.source": Case("gemmini", "key", {"simulator.extension.source": "gemmini/spike/copy.cc"}),
    "verify.rtol": Case("rv64gc", "verify", {"verify.rtol": 0.5}),
    "verify.atol": Case("rv64gc", "verify", {"verify.atol": 0.5}),
    "verify.max_lsb": Case("gemmini", "verify", {"verify.max_lsb": 0}),
    "verify.max_lsb_fraction": Case("gemmini", "verify", {"verify.max_lsb_fraction": 0.0}),
    "accelerator.kind": Case("gemmini", "refused", {"accelerator.kind": "other"}),
    "accelerator.dim": Case("gemmini", "elf", {"accelerator.dim": 8}),
    "accelerator.input_type": Case("gemmini", "refused", {"accelerator.input_type": "int16"}),
    "accelerator.acc_type": Case("gemmini", "refused", {"accelerator.acc_type": "float32"}),
    "accelerator.scratchpad.size_kib": Case("gemmini", "elf", {"accelerator.scratchpad.size_kib": 32}),
    "accelerator.accumulator.size_kib": Case("gemmini", "elf", {"accelerator.accumulator.size_kib": 16}),
    "accelerator.dataflows": Case("gemmini", "elf", {"accelerator.dataflows": ["os"]}),
    "accelerator.loops": Case("gemmini", "elf", {"accelerator.loops": []}),
    "accelerator.dma.bus_bits": Case("gemmini", "cycles", {"accelerator.dma.bus_bits": 64}),
    "accelerator.dma.max_bytes": Case("gemmini", "elf", {"accelerator.dma.max_bytes": 128}),
    "accelerator.header": Case("gemmini", "key", {"accelerator.header": "gemmini/copy.h"}),
    "accelerator.intrinsics[].name": Case("gemmini", "named", {"accelerator.intrinsics.0.name": "my_matmul"}),
    "accelerator.intrinsics[].op": Case("gemmini", "refused", {"accelerator.intrinsics.0.op": "conv2d"}),
    "accelerator.intrinsics[].function": Case("gemmini", "error", {"accelerator.intrinsics.0.function": "nope"}),
    "accelerator.intrinsics[].a": Case("gemmini", "refused", {"accelerator.intrinsics.0.a": "int16"}),
    "accelerator.intrinsics[].b": Case("gemmini", "refused", {"accelerator.intrinsics.0.b": "int16"}),
    "accelerator.intrinsics[].bias": Case("gemmini", "refused", {"accelerator.intrinsics.0.bias": "int8"}),
    "accelerator.intrinsics[].out": Case("gemmini", "refused", {"accelerator.intrinsics.0.out": "int32"}),
    **{f"simulator.timing.{name}": Case("gemmini", "cycles", {f"simulator.timing.{name}": value})
       for name, value in (("queue_depth.load", 1), ("queue_depth.execute", 1), ("queue_depth.store", 1),
                           ("dma_latency", 400), ("dma_request_cycles", 8), ("spad_read_latency", 40),
                           ("compute_cycles", 64), ("preload_cycles", 64), ("pipeline_latency", 200),
                           ("config_cycles", 5000))},
}


def leaves(node: dict[str, Any], defs: dict[str, Any], path: str = "") -> list[str]:
    """The schema's leaf fields as dotted paths (`[]` for the items of an array of objects)."""
    if "$ref" in node:
        return leaves(defs[node["$ref"].split("/")[-1]], defs, path)
    if node.get("type") == "object" and "properties" in node:
        return [leaf for key, sub in node["properties"].items()
                for leaf in leaves(sub, defs, f"{path}.{key}" if path else key)]
    items = node.get("items")
    if node.get("type") == "array" and isinstance(items, dict) and items.get("type") == "object":
        return leaves(items, defs, f"{path}[]")
    return [path]


def test_the_sweep_covers_every_field_of_the_schema() -> None:
    fields = set(leaves(schema(), schema().get("$defs", {})))
    assert fields == set(SWEEP), f"unswept: {sorted(fields - set(SWEEP))}; gone: {sorted(set(SWEEP) - fields)}"


def patched(data: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(data)
    for dotted, value in patch.items():
        *parents, last = dotted.split(".")
        node: Any = out
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[int(last) if last.isdigit() else last] = value
    return out


def variant(name: str, patch: dict[str, Any], folder: Path) -> Path:
    """The shipped target `name` with `patch`, written beside a copy of its files (header, model)."""
    folder.mkdir(parents=True, exist_ok=True)
    if (targets_dir() / "gemmini").is_dir() and not (folder / "gemmini").exists():
        shutil.copytree(targets_dir() / "gemmini", folder / "gemmini")
        shutil.copy(folder / "gemmini" / "gemmini.h", folder / "gemmini" / "copy.h")
        shutil.copy(folder / "gemmini" / "spike" / "gemmini.cc", folder / "gemmini" / "spike" / "copy.cc")
        with (folder / "gemmini" / "copy.h").open("a") as f:
            f.write("\n/* a copy */\n")
    data = yaml.safe_load((targets_dir() / f"{name}.yaml").read_text())
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(patched(data, patch)))
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("models")
    onnx.save(samples.cnn(softmax=False), str(folder / "cnn.onnx"))
    onnx.save(samples.mlp(softmax=False), str(folder / "mlp.onnx"))
    quantize_model(folder / "cnn.onnx", folder / "cnn.int8.onnx", load_target("gemmini"), random_n=4)
    return {"rv64gc": folder / "mlp.onnx", "gemmini": folder / "cnn.int8.onnx"}


@dataclass
class Built:
    target: Target
    folder: Path
    elf: bytes
    stats: dict[str, Any]
    outputs: dict[str, np.ndarray]


def build_and_run(target: Target, model: Path, folder: Path) -> Built:
    build = compile_model(model, target, Options(), folder).build_dir
    return run(target, build)


def run(target: Target, build: Path) -> Built:
    io = json.loads((build / "io.json").read_text())
    result = run_build(target, build, load_inputs(io, None, 1), build / f"run-{target.name}")
    return Built(target, build, (build / "model.elf").read_bytes(), result.stats, result.outputs)


@pytest.fixture(scope="module")
def baselines(tmp_path_factory: pytest.TempPathFactory, models: dict[str, Path]) -> Any:
    """One build of each unpatched (or `base`-patched) target, shared by the cases that compare with it."""
    built: dict[str, Built] = {}

    def get(case: Case) -> Built:
        key = json.dumps([case.target, case.base], sort_keys=True)
        if key not in built:
            folder = tmp_path_factory.mktemp("baseline")
            built[key] = build_and_run(load_target(str(variant(case.target, case.base, folder / "t"))),
                                       models[case.target], folder / "b")
        return built[key]

    return get


@pytest.mark.parametrize("name", sorted(SWEEP))
def test_each_field_takes_effect(name: str, models: dict[str, Path], baselines: Any, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    case = SWEEP[name]
    changed_path = variant(case.target, {**case.base, **case.patch}, tmp_path / "changed")
    if case.effect == "refused":
        with pytest.raises(TvmxError, match=r"\$\.|schema_version"):
            load_target(str(changed_path))
        return
    changed, model = load_target(str(changed_path)), models[case.target]
    if case.effect == "named":  # a name: the target's, or an intrinsic's (the offload report's)
        label = next(iter(case.patch.values()))
        assert label in (changed.name, *(i["name"] for i in (changed.accelerator or {}).get("intrinsics", [])))
        return
    if case.effect == "listed":  # by `tvmx targets list`, for a target on the search path
        monkeypatch.setenv("TVMX_TARGETS_PATH", str(changed_path.parent))
        assert f"{case.patch['description']}  ({changed_path.resolve()})" in cli("targets", "list").output
        return
    if case.effect == "error":  # validated, and then a clear error of the compile or run that reads it
        with pytest.raises(TvmxError):
            build_and_run(changed, model, tmp_path / "b")
        return
    if case.effect == "verify":
        check_verify_limits(load_target(case.target), changed)
        return
    before = baselines(case)
    if case.effect == "key":  # a file the target names, by content: another file is another build
        assert build_key(model, changed, Options()) != build_key(model, before.target, Options())
        return
    if case.effect in ("cycles", "simulator"):  # the same program, on another simulated machine
        assert build_key(model, changed, Options())["files"]["target"] != build_key(model, before.target,
                                                                                  Options())["files"]["target"]
        after = run(changed, before.folder)
    else:
        after = build_and_run(changed, model, tmp_path / "b")
    for out, ref in before.outputs.items():  # the change is in how, never in what, the model computes
        assert np.allclose(after.outputs[out], ref, rtol=1e-4, atol=1e-5), out
    if case.effect == "elf":
        assert after.elf != before.elf, f"{name}: the same ELF"
    elif case.effect == "cycles":
        assert after.stats["cycles"] != before.stats["cycles"], name
    elif case.effect == "simulator":
        from tvmx.simulator.spike import Spike

        assert (Spike(changed.simulator).command(Path("m.elf")).argv
                != Spike(before.target.simulator).command(Path("m.elf")).argv)
    else:
        raise AssertionError(f"unknown effect {case.effect}")


def check_verify_limits(base: Target, changed: Target) -> None:
    """The limits decide: outputs 20% off (float) or one element of 1000 one step off (int8) pass
    under one target's limits and fail under the other's."""
    ref = np.linspace(-2, 2, 1000).astype(np.float32)
    got, scales = ref * 1.2, {}
    if base.accelerator is not None:  # int8 outputs in quantization steps
        ref = np.arange(-50, 50, dtype=np.int8).repeat(10)
        got = ref.copy()
        got[0] += 1  # one element one step off
        scales = {"y": 1.0}

    def ok(t: Target) -> bool:
        return compare({"y": got}, {"y": ref}, t.verify.rtol, t.verify.atol, scales,
                       t.verify.max_lsb, t.verify.max_lsb_fraction).ok

    assert ok(base) != ok(changed)
