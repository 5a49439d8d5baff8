"""The rules of tests/toolcheck.py: what counts as CI, and that CI fails where a laptop skips."""

from __future__ import annotations

import pytest
from toolcheck import in_ci, missing_tools, skip_or_fail


@pytest.mark.parametrize(("value", "ci"), [("true", True), ("TRUE", True), ("1", True), ("yes", True), ("Yes ", True),
                                           ("false", False), ("0", False), ("no", False), ("", False)])
def test_ci_is_a_true_value(monkeypatch: pytest.MonkeyPatch, value: str, ci: bool) -> None:
    monkeypatch.setenv("CI", value)
    assert in_ci() is ci


def test_unset_ci_is_not_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    assert not in_ci()


def test_ci_fails_where_others_skip(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="no g"):
        skip_or_fail("no g++")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must have every tool"):
        skip_or_fail("no g++")


def test_a_missing_gxx_is_noticed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CXX", "tvmx-no-such-g++")
    assert "gxx" in missing_tools()


@pytest.mark.toolchain
def test_gemmini_tests_need_gxx(request: pytest.FixtureRequest) -> None:
    """This test's own name says gemmini and it is marked toolchain: collection added gxx."""
    assert request.node.get_closest_marker("gxx") is not None


def test_a_missing_chromium_is_noticed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TVMX_CHROMIUM", "tvmx-no-such-browser")
    assert "chromium" in missing_tools()
