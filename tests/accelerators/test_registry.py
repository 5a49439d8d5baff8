"""The accelerator kinds (tvmx.accelerators.KINDS): a target's kind picks its class, which builds
the accelerator and checks the kind's own limits of the target's section."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tvmx.accelerators import KINDS, accelerator_for, check_accelerator_section
from tvmx.accelerators.gemmini import Gemmini
from tvmx.errors import InputError
from tvmx.target import load_target


def test_the_kind_picks_the_class() -> None:
    assert isinstance(accelerator_for(load_target("gemmini")), Gemmini)
    assert accelerator_for(load_target("rv64gc")) is None


def test_an_unknown_kind_lists_the_known_ones() -> None:
    target = load_target("gemmini")
    tpu = dataclasses.replace(target, accelerator={**(target.accelerator or {}), "kind": "tpu"})
    with pytest.raises(InputError, match=r"\$\.accelerator\.kind: unknown accelerator 'tpu'") as info:
        accelerator_for(tpu)
    assert info.value.hint == f"known: {', '.join(KINDS)}"


def test_the_section_checks_are_the_kinds_own() -> None:
    section = {**(load_target("gemmini").accelerator or {}), "accumulator": {"size_kib": 0}}
    with pytest.raises(InputError, match="less than one 16x16 tile"):
        check_accelerator_section("gemmini", section, Path("t.yaml"))
