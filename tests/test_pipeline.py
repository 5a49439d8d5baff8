"""The build key: every file a build reads is in it by content, with the tools' versions, so an
edit anywhere (a target's header included) makes `tvmx verify` rebuild instead of reusing."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import onnx
import pytest

import tvmx
from tvmx import samples
from tvmx.build.builddir import BuildDir
from tvmx.options import Options
from tvmx.pipeline import COMPILER_DATA, build_key, compile_model, compiler_digest, digest_of, input_files
from tvmx.quantize import quantize_model
from tvmx.target import load_target
from tvmx.target.data import SHIPPED, shipped_dir, targets_dir
from tvmx.target.files import local_includes


def copy_target(name: str, folder: Path) -> Path:
    """A shipped gemmini target with its own copy of gemmini/ (header, Spike model) next to it."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(targets_dir() / f"{name}.yaml", folder / f"{name}.yaml")
    shutil.copytree(targets_dir() / "gemmini", folder / "gemmini")
    return folder / f"{name}.yaml"


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "mlp.onnx"
    onnx.save(samples.mlp(softmax=False), str(path))
    return path


def test_key_names_the_target_files_by_content(model: Path, tmp_path: Path) -> None:
    target = load_target(copy_target("gemmini", tmp_path / "t"))
    files = input_files(model, target)
    assert files["accelerator.header"] == (tmp_path / "t" / "gemmini" / "gemmini.h").resolve()
    assert files["simulator.extension.source"] == (tmp_path / "t" / "gemmini" / "spike" / "gemmini.cc").resolve()
    key = build_key(model, target, Options())
    assert set(key) == {"compiler", "files", "tools", "options", "records"}
    assert set(key["files"]) >= {"model", "target", "accelerator.header", "simulator.extension.source"}
    assert {"cc", "spike", "host c++"} <= set(key["tools"])
    assert key == build_key(model, target, Options()), "the key is a pure function of the inputs"


@pytest.mark.parametrize("edit", ["accelerator.header", "simulator.extension.source", "model"])
def test_an_edit_of_any_input_changes_the_key(model: Path, tmp_path: Path, edit: str) -> None:
    target = load_target(copy_target("gemmini", tmp_path / "t"))
    before = build_key(model, target, Options())
    path = input_files(model, target)[edit]
    if edit == "model":
        m = onnx.load(str(path))
        m.doc_string = "edited"
        onnx.save(m, str(path))
    else:
        path.write_text(path.read_text() + "\n/* edited */\n")
    assert build_key(model, target, Options())["files"][edit] != before["files"][edit]


def test_a_moved_model_keeps_its_key(model: Path, tmp_path: Path) -> None:
    target = load_target("rv64gc")
    moved = tmp_path / "elsewhere" / "mlp.onnx"
    moved.parent.mkdir()
    shutil.copy(model, moved)
    assert build_key(model, target, Options()) == build_key(moved, target, Options())


def test_headers_included_from_the_headers_folder_are_keyed(model: Path, tmp_path: Path) -> None:
    yaml_path = copy_target("gemmini", tmp_path / "t")
    header = tmp_path / "t" / "gemmini" / "gemmini.h"
    (header.parent / "extra").mkdir()
    (header.parent / "extra" / "more.h").write_text('#include "../helper.h"\n#include "nowhere.h"\n')
    (header.parent / "helper.h").write_text("/* helper */\n")
    header.write_text('#include "extra/more.h"\n' + header.read_text())
    assert local_includes(header) == sorted([(header.parent / "extra" / "more.h").resolve(),
                                             (header.parent / "helper.h").resolve()])
    target = load_target(yaml_path)
    before = build_key(model, target, Options())
    assert "accelerator.header includes helper.h" in before["files"]
    (header.parent / "helper.h").write_text("/* helper, edited */\n")
    assert build_key(model, target, Options()) != before


def test_compiler_digest_covers_the_runtime_not_the_shipped_targets(tmp_path: Path) -> None:
    package = Path(tvmx.__file__).parent
    shipped = {name: shipped_dir(name) for name in SHIPPED}
    assert compiler_digest() == digest_of(package, {name: shipped[name] for name in COMPILER_DATA})
    # The same files laid out as a wheel lays them (data inside the package) digest the same.
    wheel = tmp_path / "wheel" / "tvmx"
    shutil.copytree(package, wheel, ignore=shutil.ignore_patterns("__pycache__"))
    for name, folder in shipped.items():
        if not (wheel / name).is_dir():
            shutil.copytree(folder, wheel / name)
    as_wheel = digest_of(wheel, {name: wheel / name for name in COMPILER_DATA})
    assert as_wheel == compiler_digest()
    crt0 = wheel / "runtime" / "crt0.S"
    crt0.write_text(crt0.read_text() + "# edited\n")
    assert digest_of(wheel, {name: wheel / name for name in COMPILER_DATA}) != as_wheel
    # another shipped target is not tvmx: its edit rebuilds nothing (the one a build uses is keyed itself)
    other = wheel / "targets" / "rv64gcv.yaml"
    other.write_text(other.read_text() + "# edited\n")
    crt0.write_text(crt0.read_text().removesuffix("# edited\n"))
    assert digest_of(wheel, {name: wheel / name for name in COMPILER_DATA}) == as_wheel


@pytest.mark.toolchain
@pytest.mark.slow
def test_header_edit_makes_the_build_stale(model: Path, tmp_path: Path) -> None:
    target_path = copy_target("gemmini", tmp_path / "t")
    qdq = tmp_path / "mlp.int8.onnx"
    quantize_model(model, qdq, load_target(target_path), random_n=4)
    target, options, out = load_target(target_path), Options(), tmp_path / "build"
    first = compile_model(qdq, target, options, out, reuse=True)
    assert not first.reused and (out / "model.elf").is_file()
    manifest = json.loads((out / "manifest.json").read_text())
    header = tmp_path / "t" / "gemmini" / "gemmini.h"
    assert manifest["inputs"]["accelerator.header"]["path"] == str(header.resolve())
    assert BuildDir(out).is_up_to_date(build_key(qdq, target, options))
    assert compile_model(qdq, target, options, out, reuse=True).reused

    with header.open("a") as f:
        f.write("/* a comment appended by the test */\n")
    assert not BuildDir(out).is_up_to_date(build_key(qdq, target, options)), "a header edit must rebuild"
    again = compile_model(qdq, target, options, out, reuse=True)
    assert not again.reused
    assert BuildDir(out).is_up_to_date(build_key(qdq, target, options))


def test_tuning_records_are_in_the_key(model: Path, tmp_path: Path) -> None:
    from tvmx.stages.tune import llvm_target_of
    from tvmx.tune.records import Records
    from tvmx.tune.tasks import model_tasks

    target = load_target("rv64gc")
    options = Options(records=tmp_path / "rec")
    assert build_key(model, target, options)["records"] is None  # none yet
    records = Records.open(tmp_path / "rec", target)
    task = model_tasks(model, target, options)[0]
    from tvm import s_tir

    records.commit(task.workload, s_tir.Schedule(task.workload).trace, 1000, llvm_target_of(target))
    first = build_key(model, target, options)["records"]
    assert first is not None
    records.commit(task.workload, s_tir.Schedule(task.workload).trace, 900, llvm_target_of(target))
    assert build_key(model, target, options)["records"] not in (None, first)
