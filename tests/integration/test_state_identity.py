"""State belongs to its daemon: one daemon per state directory, outbox rows delivered only to the
broker and prefix they were produced for, baselines only reused by the camera they were learnt on.

Real daemons, real mosquitto, the GStreamer RTSP server and the oracle model (fault_fixtures).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from tests.integration.fault_fixtures import (  # noqa: F401 (fixtures)
    daemons,
    fault_clip,
    log_text,
    oracle,
    own_broker,
    start_daemon,
    wait_for,
    wait_log,
)
from tests.support.faults import read_outbox
from tests.support.mqtt import Mosquitto, MqttCollector
from tests.support.procs import free_port

pytestmark = pytest.mark.integration

WATCHING = r"watching \d+ camera"


def test_another_configs_pending_event_is_kept_not_delivered_and_its_own_config_sends_it_later(
        own_broker, daemons, tmp_path, oracle, fault_clip, rtsp_factory, prefix):
    """The issue's sequence: config A (camera gate, its broker unreachable) leaves a stream_lost in
    the shared default state directory; config B (cam0, another broker and prefix) must not deliver
    it, keeps it and reports it; A started again, with its broker up, delivers it with its id."""
    state_dir = tmp_path / "state"
    gate_srv = rtsp_factory({"/gate": fault_clip("sharp")})
    port_a, prefix_a = free_port(), f"{prefix}_a"  # nothing listens there yet
    run_a = {"port": port_a, "prefix": prefix_a, "oracle": oracle, "state_dir": state_dir,
             "cameras": {"gate": {"url": gate_srv.url("/gate")}}}
    a = start_daemon(daemons, tmp_path, name="a", **run_a)
    wait_log(a, r"camera gate: \S+ in-focus baseline learnt", 1, 40.0)  # it has seen frames
    gate_srv.stop()
    wait_for(lambda: any(e["type"] == "stream_lost" for e in read_outbox(state_dir)), 30.0,
             "gate's stream_lost in the outbox")
    assert a.terminate() == 0
    pending = read_outbox(state_dir)
    assert pending and all(row["camera"] == "gate" for row in pending), pending

    cam_srv = rtsp_factory({"/cam0": fault_clip("sharp")})
    everything = MqttCollector(own_broker.host, own_broker.port, ["#"]).start()
    b = start_daemon(daemons, tmp_path, name="b", port=own_broker.port, prefix=prefix, oracle=oracle,
                     state_dir=state_dir, cameras={"cam0": {"url": cam_srv.url("/cam0")}},
                     extra={"metrics": {"stats_interval_s": 1}})
    stats = everything.wait_topic(f"{prefix}/stats", lambda m: m.json().get("outbox_foreign") is not None, 40.0)
    everything.wait_topic(f"{prefix}/cam0/state", lambda m: m.json()["stream"] == "online", 40.0)
    assert stats.json()["outbox_foreign"] == len(pending)
    assert stats.json()["outbox_depth"] == 0
    wait_log(b, rf"outbox: {len(pending)} undelivered event\(s\) of mqtt://127\.0\.0\.1:{port_a}/{prefix_a} "
                r"\(another config\) kept", 1, 5.0)
    time.sleep(2.0)  # ample time for a wrong delivery to show
    leaked = [m for m in everything.messages() if "gate" in m.topic or b'"gate"' in m.payload]
    assert leaked == [], leaked
    assert b.terminate() == 0
    assert [row["id"] for row in read_outbox(state_dir)] == [row["id"] for row in pending]  # kept, untouched
    everything.stop()

    broker_a = Mosquitto(tmp_path / "broker_a", port=port_a).start()
    try:
        got = MqttCollector(broker_a.host, broker_a.port, [f"{prefix_a}/#"]).start()
        start_daemon(daemons, tmp_path, name="a_again", **run_a)
        wait_for(lambda: {json.loads(m.payload)["id"] for m in got.messages(f"{prefix_a}/gate/events")}
                 >= {row["id"] for row in pending}, 40.0, "A's own pending events, with their original ids")
        wait_for(lambda: read_outbox(state_dir) == [], 10.0, "an empty outbox")
        got.stop()
    finally:
        broker_a.stop()


def test_a_second_daemon_on_the_same_state_directory_is_refused(
        broker, daemons, tmp_path, oracle, fault_clip, rtsp_factory, prefix):
    state_dir = tmp_path / "state"
    srv = rtsp_factory({"/a": fault_clip("sharp"), "/b": fault_clip("sharp")})
    first = start_daemon(daemons, tmp_path, name="first", port=broker.port, prefix=prefix, oracle=oracle,
                         state_dir=state_dir, cameras={"a": {"url": srv.url("/a")}})
    wait_log(first, WATCHING, 1, 40.0)
    second = start_daemon(daemons, tmp_path, name="second", port=broker.port, prefix=f"{prefix}_2",
                          oracle=oracle, state_dir=state_dir, cameras={"b": {"url": srv.url("/b")}})
    assert second.proc is not None
    assert second.proc.wait(30) == 2
    text = log_text(second)
    assert "Traceback" not in text
    refusal = [line for line in text.splitlines() if "in use by another focusguard daemon" in line]
    assert len(refusal) == 1, text
    assert str(state_dir) in refusal[0] and f"pid {first.pid}" in refusal[0] and "state_dir" in refusal[0]
    first.assert_running()
    assert first.terminate() == 0
    # Once the first one is gone, the directory is free again (the kernel dropped the flock).
    third = start_daemon(daemons, tmp_path, name="third", port=broker.port, prefix=f"{prefix}_2",
                         oracle=oracle, state_dir=state_dir, cameras={"b": {"url": srv.url("/b")}})
    wait_log(third, WATCHING, 1, 40.0)


def baseline_file(state_dir: Path, camera: str) -> Path:
    return state_dir / "baseline" / f"{camera}.fusion.json"


def test_a_re_pointed_camera_learns_anew_and_the_same_camera_keeps_its_baseline(
        broker, daemons, tmp_path, oracle, fault_clip, rtsp_factory, prefix):
    state_dir = tmp_path / "state"
    srv = rtsp_factory({"/one": fault_clip("sharp"), "/two": fault_clip("sharp")})
    run = {"port": broker.port, "prefix": prefix, "oracle": oracle, "state_dir": state_dir}

    def learn(name: str, url: str) -> dict[str, object]:
        d = start_daemon(daemons, tmp_path, name=name, cameras={"cam0": {"url": url}}, **run)
        wait_log(d, r"camera cam0: \S+ in-focus baseline learnt", 1, 40.0)
        assert d.terminate() == 0
        return dict(json.loads(baseline_file(state_dir, "cam0").read_text()))

    first = learn("one", srv.url("/one"))
    assert first["identity"]
    assert srv.url("/one") not in baseline_file(state_dir, "cam0").read_text()  # a hash, not the URL

    same = start_daemon(daemons, tmp_path, name="same", cameras={"cam0": {"url": srv.url("/one")}}, **run)
    wait_log(same, r"camera cam0: fusion baseline loaded from", 1, 40.0)
    assert same.terminate() == 0
    assert "learnt for another camera" not in log_text(same)

    moved = start_daemon(daemons, tmp_path, name="moved", cameras={"cam0": {"url": srv.url("/two")}}, **run)
    wait_log(moved, r"camera cam0: baseline .* was learnt for another camera", 1, 40.0)
    wait_log(moved, r"camera cam0: \S+ in-focus baseline learnt", 1, 40.0)
    assert moved.terminate() == 0
    now = json.loads(baseline_file(state_dir, "cam0").read_text())
    assert now["identity"] != first["identity"]
    kept = list((state_dir / "baseline").glob("cam0.fusion.json.other-*"))
    assert [json.loads(p.read_text())["identity"] for p in kept] == [first["identity"]]  # kept aside, not lost

    renamed = start_daemon(daemons, tmp_path, name="renamed", cameras={"cam9": {"url": srv.url("/two")}}, **run)
    wait_log(renamed, r"camera cam9: \S+ in-focus baseline learnt", 1, 40.0)
    assert renamed.terminate() == 0
    assert json.loads(baseline_file(state_dir, "cam9").read_text())["identity"] not in (now["identity"],
                                                                                       first["identity"])
