from __future__ import annotations

import pytest

from tvmx.errors import InputError
from tvmx.stages.registry import STAGES, find_stage, stage_names


def test_order_and_numbering() -> None:
    assert [s.name for s in STAGES] == ["import", "relax", "tune", "lower", "codegen", "assemble"]
    assert [s.index for s in STAGES] == list(range(1, 7))
    assert all(s.produces.startswith(f"{s.index:02d}-{s.name}") for s in STAGES)


def test_relay_is_an_alias_of_relax() -> None:
    assert find_stage("relay") is find_stage("relax")
    assert "relay" in stage_names()


def test_unknown_stage() -> None:
    with pytest.raises(InputError, match="unknown stage 'link'"):
        find_stage("link")
