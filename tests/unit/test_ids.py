"""Ids made in the same second by one process never repeat, even when random suffixes collide."""

from __future__ import annotations

import pytest

from aipass_tui.core import clock


def test_ids_in_one_second_stay_unique(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "_now", lambda: 1_800_000_000.0)
    suffixes = iter(["aaaaaa", "aaaaaa", "bbbbbb", "aaaaaa", "cccccc"])
    monkeypatch.setattr(clock, "_random_hex", lambda _n: next(suffixes))
    ids = [clock.new_id("r") for _ in range(3)]
    assert len(set(ids)) == 3
    assert [i.rsplit("-", 1)[1] for i in ids] == ["aaaaaa", "bbbbbb", "cccccc"]


def test_thousand_ids_in_one_second_are_unique(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(clock, "_now", lambda: 1_800_000_001.0)
    ids = [clock.new_id("r") for _ in range(5000)]
    assert len(set(ids)) == len(ids)
