"""SQLite outbox: durability across reopen, order, removal, bound with a drop counter."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from focusguard.delivery.outbox import Outbox


def test_add_pending_remove_in_order(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite3")
    ids = [box.add("p/c/events", f'{{"n": {n}}}') for n in range(5)]
    assert ids == sorted(ids)
    assert [e.payload for e in box.pending()] == [f'{{"n": {n}}}' for n in range(5)]
    box.remove(ids[1])
    box.remove(ids[1])  # idempotent
    assert [e.id for e in box.pending()] == [ids[0], *ids[2:]]
    assert [e.id for e in box.pending(after_id=ids[2], limit=1)] == [ids[3]]
    assert len(box) == 4


def test_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    box = Outbox(path)
    first = box.add("t/a", "one")
    box.add("t/b", "two")
    box.remove(first)
    box.close()
    again = Outbox(path)
    (entry,) = again.pending()
    assert (entry.topic, entry.payload) == ("t/b", "two")
    assert again.add("t/c", "three") > entry.id  # ids keep growing: order across restarts


def test_bound_drops_oldest_and_counts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "o.sqlite3"
    box = Outbox(path, limit=3)
    for n in range(5):
        box.add("t", str(n))
    assert [e.payload for e in box.pending()] == ["2", "3", "4"]
    assert box.dropped == 2
    assert "dropped the 1 oldest" in caplog.text
    box.close()
    assert Outbox(path, limit=3).dropped == 2  # the counter is persisted


def test_invalid_limit() -> None:
    with pytest.raises(ValueError):
        Outbox(":memory:", limit=0)


def test_concurrent_adds_keep_every_event() -> None:
    box = Outbox(":memory:")

    def writer(tag: str) -> None:
        for n in range(50):
            box.add("t", f"{tag}{n}")

    threads = [threading.Thread(target=writer, args=(tag,)) for tag in "abc"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    payloads = [e.payload for e in box.pending()]
    assert len(payloads) == 150
    for tag in "abc":  # each writer's events stay in its order
        mine = [p for p in payloads if p.startswith(tag)]
        assert mine == [f"{tag}{n}" for n in range(50)]
