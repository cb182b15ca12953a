"""`model: {path: ...}` selects the thesis' other nets (issue 16): the daemon, with each shipped
MANN / MFF model as its CNN (`detector: cnn`, so the verdict is that net's alone), reports the
demo clip's focus loss and its return over real RTSP and MQTT."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.mqtt import wait_retained

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
NETS = {"mann": REPO / "models" / "mann" / "focusguard_mann_448_int8.tflite",
        "mff": REPO / "models" / "mff" / "focusguard_mff_448_int8.tflite"}  # fmt: skip
LABELS = ["sharp", "b_0.5", "b_0.75", "b_1", "b_2", "b_3", "b_4", "b_5", "b_7"]


@pytest.mark.parametrize("net", sorted(NETS))
def test_model_path_selects_the_net_and_it_reports_the_demo_focus_loss(
    net, broker, collector, prefix, daemon_factory, rtsp_factory, demo_clip
):
    srv = rtsp_factory({"/gate": demo_clip})
    d = daemon_factory({"gate": {"url": srv.url("/gate"), "detector": "cnn"}},
                       model={"path": str(NETS[net]), "device": "cpu"})  # fmt: skip
    events = f"{prefix}/gate/events"
    collector.wait_topic(f"{prefix}/gate/state", lambda m: m.json()["focus"] == "ok", 60.0)
    lost = collector.wait_event(events, "focus_lost", 60.0).json()
    assert lost["class"] in LABELS[LABELS.index("b_0.75") :] and list(lost["probabilities"]) == LABELS, lost
    restored = collector.wait_event(events, "focus_restored", 40.0).json()
    assert restored["class"] in LABELS[: LABELS.index("b_0.75")], restored
    state = wait_retained(broker.host, broker.port, f"{prefix}/gate/state", lambda m: m.json()["focus"] == "ok")
    assert state.json()["stream"] == "online"
    assert f"model {NETS[net].name}" in d.log_tail(400), d.log_tail(40)  # the operator sees which net runs
    d.assert_running()
