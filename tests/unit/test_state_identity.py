"""Identities of state (identity.py), the state-directory lock (statelock.py) and the outbox's
per-identity rows (outbox.py), on real files."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from focusguard.analysis.baseline import BaselineStore
from focusguard.analysis.fusion import FusionBaselines
from focusguard.common.identity import (
    camera_identity,
    delivery_identity,
    url_without_credentials,
)
from focusguard.delivery.outbox import Outbox
from focusguard.operate.statelock import StateDirBusy, StateLock

HERE = delivery_identity("127.0.0.1", 1883, "site/focusguard")
THERE = delivery_identity("10.0.0.9", 8883, "focusguard")


def test_camera_identity_survives_a_password_change_but_not_a_new_address_name_or_broker() -> None:
    base = camera_identity(HERE, "gate", "rtsp://admin:old@10.1.1.5:554/stream1")
    assert camera_identity(HERE, "gate", "rtsp://admin:new@10.1.1.5:554/stream1") == base
    assert camera_identity(HERE, "gate", "rtsp://10.1.1.5:554/stream1") == base
    assert camera_identity(HERE, "gate", "rtsp://admin:old@10.1.1.6:554/stream1") != base
    assert camera_identity(HERE, "door", "rtsp://admin:old@10.1.1.5:554/stream1") != base
    assert camera_identity(THERE, "gate", "rtsp://admin:old@10.1.1.5:554/stream1") != base
    assert url_without_credentials("rtsp://u:p@h:554/x?y=1") == "rtsp://h:554/x?y=1"
    assert url_without_credentials("/clips/a.mp4") == "/clips/a.mp4"


def test_outbox_sends_only_its_own_rows_and_counts_the_others(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    theirs = Outbox(path, identity=THERE)
    theirs.add("focusguard/gate/events", '{"id": "t1"}')
    theirs.close()
    ours = Outbox(path, limit=2, identity=HERE)
    assert ours.pending() == [] and len(ours) == 0
    assert ours.foreign == {THERE: 1}
    for i in range(3):  # the limit bounds and drops our rows only
        ours.add("site/focusguard/cam0/events", f'{{"id": "o{i}"}}')
    assert [json.loads(e.payload)["id"] for e in ours.pending()] == ["o1", "o2"]
    foreign_id = Outbox(path, identity=THERE).pending()[0].id
    ours.remove(foreign_id)  # not ours: no effect
    assert ours.foreign == {THERE: 1}
    ours.close()
    assert [json.loads(e.payload)["id"] for e in Outbox(path, identity=THERE).pending()] == ["t1"]


def test_rows_of_an_older_outbox_are_adopted_by_the_identity_of_their_prefix(tmp_path: Path) -> None:
    path = tmp_path / "outbox.sqlite3"
    db = sqlite3.connect(path)  # the schema before identities
    db.executescript("CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, "
                     "payload TEXT NOT NULL); CREATE TABLE meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);")
    db.executemany("INSERT INTO outbox (topic, payload) VALUES (?, ?)",
                   [("site/focusguard/a/events", "{}"), ("other/b/events", "{}"), ("site/focusguardX/c/events", "{}")])
    db.commit()
    db.close()
    ours = Outbox(path, identity=HERE)
    assert [e.topic for e in ours.pending()] == ["site/focusguard/a/events"]
    assert sum(ours.foreign.values()) == 2


def test_a_baseline_of_another_camera_is_moved_aside_and_learnt_anew(tmp_path: Path) -> None:
    path = tmp_path / "baseline" / "cam0.json"
    old = BaselineStore("cam0", path, identity="first")
    for _ in range(5):
        old.learn("day", 10.0)
    assert json.loads(path.read_text())["identity"] == "first"
    assert BaselineStore("cam0", path, identity="first").sharpness("day") == pytest.approx(10.0)
    fresh = BaselineStore("cam0", path, identity="second")
    assert fresh.sharpness("day") is None
    aside = list(path.parent.glob("cam0.json.other-*"))
    assert len(aside) == 1 and json.loads(aside[0].read_text())["identity"] == "first"
    legacy = tmp_path / "legacy.json"  # a file from before identities: adopted
    legacy.write_text(json.dumps({k: v for k, v in json.loads(aside[0].read_text()).items() if k != "identity"}))
    assert BaselineStore("cam0", legacy, identity="second").sharpness("day") == pytest.approx(10.0)


def test_fusion_baselines_check_the_identity_too(tmp_path: Path) -> None:
    path = tmp_path / "cam0.fusion.json"
    path.write_text(json.dumps({"version": 1, "camera": "cam0", "identity": "first", "regimes": {}}))
    FusionBaselines("cam0", path, identity="second")
    assert not path.exists() and len(list(tmp_path.glob("cam0.fusion.json.other-*"))) == 1


def test_the_state_lock_refuses_a_second_holder_and_names_the_first(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from focusguard.operate.statelock import StateLock; "
        f"StateLock({str(tmp_path)!r}).acquire(); print('held', flush=True); time.sleep(30)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(StateDirBusy) as refused:
            StateLock(tmp_path).acquire()
        assert f"pid {holder.pid}" in str(refused.value) and str(tmp_path) in str(refused.value)
    finally:
        holder.kill()
        holder.wait()
    lock = StateLock(tmp_path)  # the kernel released it with the process
    lock.acquire()
    assert (tmp_path / "lock").read_text().strip() == str(os.getpid())
    lock.release()
