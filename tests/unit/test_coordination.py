"""Coordination's parts without a ZooKeeper: rendezvous assignment, the `coordination`/`health` config,
the group protocol against an in-memory ZooKeeper double (sessions, ephemeral nodes, watches), the
publisher and discovery forgetting a camera that moved, and the HTTP health endpoint.

The real thing (ZooKeeper, daemons, kill -9) is tests/integration/test_many_boxes.py.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kazoo.exceptions import ConnectionLoss, NodeExistsError, NoNodeError

from focusguard.common.errors import ConfigError
from focusguard.delivery.discovery import HomeAssistantDiscovery
from focusguard.operate.coordination import PARK_FRACTION, Coordinator, owner_of
from focusguard.operate.health import HealthServer
from focusguard.settings.config import parse_config
from focusguard.settings.scaleout import CoordinationConfig
from tests.unit.test_publish import make, state

CAMERAS = [f"cam{i:03d}" for i in range(400)]


# ----------------------------------------------------------------------------- rendezvous hashing


def share(members: list[str]) -> dict[str, str | None]:
    return {c: owner_of(c, members) for c in CAMERAS}


def test_every_camera_has_one_owner_and_the_shares_are_even() -> None:
    members = [f"fg-{i}" for i in range(8)]
    owners = share(members)
    counts = {m: list(owners.values()).count(m) for m in members}
    assert set(owners.values()) == set(members)
    assert min(counts.values()) >= 30 and max(counts.values()) <= 75, counts  # 50 each on average
    assert share(list(reversed(members))) == owners  # order of discovery does not matter


def test_a_join_moves_cameras_only_to_the_newcomer_and_a_leave_only_the_leavers() -> None:
    members = [f"fg-{i}" for i in range(5)]
    before, after = share(members), share([*members, "fg-new"])
    moved = [c for c in CAMERAS if before[c] != after[c]]
    assert moved and all(after[c] == "fg-new" for c in moved)
    assert 40 <= len(moved) <= 110  # about 1/6 of 400
    gone = share(members[1:])
    assert all(gone[c] == before[c] for c in CAMERAS if before[c] != "fg-0")


# ----------------------------------------------------------------------------- config


def config_with(coordination: Any, **extra: Any) -> Any:
    return parse_config({"cameras": {"a": {"url": "rtsp://192.0.2.1/a"}}, "coordination": coordination, **extra},
                        "/etc/fg.yaml")  # fmt: skip


def test_coordination_absent_is_a_single_box_and_present_is_parsed() -> None:
    assert parse_config({"cameras": {"a": {"url": "rtsp://192.0.2.1/a"}}}).coordination is None
    cfg = config_with({"instance_id": "box-1", "zookeeper": {"hosts": ["zk1:2181", "zk2:2181"], "path": "/fg/s1"}})
    assert cfg.coordination == CoordinationConfig("zk1:2181,zk2:2181", "/fg/s1", 10.0, "box-1")
    default = config_with({"zookeeper": {"hosts": "zk1:2181", "path": "/fg/s1", "session_timeout_s": 6}})
    assert default.coordination is not None and default.coordination.instance_id  # the host name


@pytest.mark.parametrize(("coordination", "key", "problem"), [
    ({"zookeeper": {"path": "/fg"}}, "coordination.zookeeper.hosts", "required"),
    ({"zookeeper": {"hosts": "zk 1:2181", "path": "/fg"}}, "coordination.zookeeper.hosts", "host:port"),
    ({"zookeeper": {"hosts": "zk:2181", "path": "fg/site"}}, "coordination.zookeeper.path", "absolute"),
    ({"zookeeper": {"hosts": "zk:2181", "path": "/fg", "session_timeout_s": 0.1}},
     "coordination.zookeeper.session_timeout_s", "between"),
    ({"instance_id": "a/b", "zookeeper": {"hosts": "zk:2181", "path": "/fg"}}, "coordination.instance_id", "letters"),
    ({"zookeper": {}}, "coordination.zookeper", "did you mean 'zookeeper'"),
])  # fmt: skip
def test_bad_coordination_names_file_key_and_problem(coordination: Any, key: str, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        config_with(coordination)
    assert (err.value.file, err.value.key) == ("/etc/fg.yaml", key)
    assert problem in str(err.value)


# ----------------------------------------------------------------------------- the group protocol


@dataclass
class Stat:
    ephemeralOwner: int


class FakeZooKeeper:
    """Nodes, sessions and watches: what the Coordinator relies on, in memory."""

    def __init__(self) -> None:
        self.nodes: dict[str, tuple[bytes, int]] = {}  # path -> (data, ephemeral owner session or 0)
        self.child_watches: dict[str, list[Callable[[list[str]], None]]] = {}
        self.node_watches: dict[str, list[Callable[[Any], None]]] = {}  # one-shot, like ZooKeeper's
        self.sessions = 0

    def children(self, path: str) -> list[str]:
        return sorted(p[len(path) + 1:] for p in self.nodes if p.startswith(path + "/") and "/" not in p[len(path) + 1:])

    def changed(self, path: str) -> None:
        for watch in self.node_watches.pop(path, []):
            watch(type("WatchedEvent", (), {"path": path})())
        parent = path.rsplit("/", 1)[0]
        for watch in self.child_watches.get(parent, []):
            watch(self.children(parent))

    def expire(self, session: int) -> None:
        for path in [p for p, (_d, owner) in self.nodes.items() if owner == session]:
            del self.nodes[path]
            self.changed(path)


class FakeClient:
    def __init__(self, zk: FakeZooKeeper) -> None:
        self.zk, self.state, self.listeners = zk, "CONNECTED", []  # type: list[Callable[[str], None]]
        self.client_id: tuple[int, bytes] | None = None
        self.fail_deletes = 0  # the next N deletes fail with ConnectionLoss
        self.new_session()

    def new_session(self) -> None:
        self.zk.sessions += 1
        self.client_id = (self.zk.sessions, b"")

    def add_listener(self, listener: Callable[[str], None]) -> None:
        self.listeners.append(listener)

    def set_state(self, state: str) -> None:
        self.state = "CONNECTED" if state == "CONNECTED" else "CONNECTING"
        for listener in self.listeners:
            listener(state)

    def start_async(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def close(self) -> None:
        pass

    def retry(self, func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return func(*args, **kwargs)

    def ensure_path(self, path: str) -> None:
        self.zk.nodes.setdefault(path, (b"", 0))

    def create(self, path: str, data: bytes = b"", ephemeral: bool = False, makepath: bool = False) -> str:
        if path in self.zk.nodes:
            raise NodeExistsError()
        assert self.client_id is not None
        self.zk.nodes[path] = (data, self.client_id[0] if ephemeral else 0)
        self.zk.changed(path)
        return path

    def delete(self, path: str) -> None:
        if self.fail_deletes:
            self.fail_deletes -= 1
            raise ConnectionLoss()
        if path not in self.zk.nodes:
            raise NoNodeError()
        del self.zk.nodes[path]
        self.zk.changed(path)

    def exists(self, path: str, watch: Any = None) -> Stat | None:
        node = self.zk.nodes.get(path)
        if watch is not None:
            self.zk.node_watches.setdefault(path, []).append(watch)
        return None if node is None else Stat(node[1])

    def get_children(self, path: str) -> list[str]:
        return self.zk.children(path)

    def ChildrenWatch(self, path: str, func: Callable[[list[str]], None]) -> None:
        self.zk.child_watches.setdefault(path, []).append(func)
        func(self.zk.children(path))


class Instance:
    def __init__(self, zk: FakeZooKeeper, name: str, cameras: list[str], clock: Callable[[], float]) -> None:
        self.client = FakeClient(zk)
        self.watching: set[str] = set()
        self.log: list[str] = []
        cfg = CoordinationConfig("zk:2181", "/fg/site", 8.0, name)
        self.coordinator = Coordinator(cfg, cameras, self.hold, self.release, client=self.client, clock=clock)
        self.coordinator.connect()

    def hold(self, camera: str) -> None:
        assert camera not in self.watching
        self.watching.add(camera)
        self.log.append(f"hold {camera}")

    def release(self, camera: str, handover: bool) -> None:
        self.watching.remove(camera)
        self.log.append(f"release {camera} {'handover' if handover else 'local'}")


def settle(*instances: Instance) -> None:
    for _ in range(4):
        for instance in instances:
            instance.coordinator.step()


def test_instances_split_the_cameras_and_a_newcomer_takes_its_share_without_double_watching() -> None:
    zk, cameras = FakeZooKeeper(), CAMERAS[:40]
    a, b = Instance(zk, "fg-a", cameras, lambda: 0.0), Instance(zk, "fg-b", cameras, lambda: 0.0)
    settle(a, b)
    assert a.watching | b.watching == set(cameras) and not a.watching & b.watching
    assert a.watching == {c for c in cameras if owner_of(c, ["fg-a", "fg-b"]) == "fg-a"}
    c = Instance(zk, "fg-c", cameras, lambda: 0.0)
    c.coordinator.step()  # it joins, but a's and b's cameras are still theirs: it must wait
    assert not c.watching & (a.watching | b.watching)
    settle(a, b, c)
    assert a.watching | b.watching | c.watching == set(cameras)
    assert c.watching == {x for x in cameras if owner_of(x, ["fg-a", "fg-b", "fg-c"]) == "fg-c"}
    assert sum(map(len, (a.watching, b.watching, c.watching))) == len(cameras)


def test_an_owner_node_whose_delete_failed_is_deleted_later_not_left_to_block_the_next_owner() -> None:
    pair = ["fg-a", "fg-b"]
    cameras = [c for c in CAMERAS if owner_of(c, pair) == "fg-a"][:5] + [
        next(c for c in CAMERAS if owner_of(c, pair) == "fg-b")]  # a single hand-over, and its delete fails
    zk = FakeZooKeeper()
    a = Instance(zk, "fg-a", cameras, lambda: 0.0)
    settle(a)
    b = Instance(zk, "fg-b", cameras, lambda: 0.0)
    b.coordinator.step()
    a.client.fail_deletes = 1  # the first hand-over's delete is lost
    with pytest.raises(ConnectionLoss):
        a.coordinator.step()
    settle(a, b)
    assert a.watching | b.watching == set(cameras) and not a.watching & b.watching
    assert b.watching == {c for c in cameras if owner_of(c, ["fg-a", "fg-b"]) == "fg-b"}


def test_zookeeper_unreachable_parks_the_cameras_then_the_same_session_resumes_them() -> None:
    now = [0.0]
    zk = FakeZooKeeper()
    a = Instance(zk, "fg-a", CAMERAS[:10], lambda: now[0])
    settle(a)
    assert len(a.watching) == 10
    a.client.set_state("SUSPENDED")
    now[0] += PARK_FRACTION * 8.0 - 0.1
    a.coordinator.step()
    assert len(a.watching) == 10  # the session may be alive: keep watching a little
    now[0] += 0.2
    a.coordinator.step()
    assert a.watching == set() and a.coordinator.status == "suspended"
    assert all(line.endswith("local") for line in a.log if line.startswith("release"))
    a.client.set_state("CONNECTED")
    a.coordinator.step()
    assert len(a.watching) == 10 and a.coordinator.ready


def test_an_expired_session_stops_everything_and_the_instance_joins_again() -> None:
    zk = FakeZooKeeper()
    a, b = Instance(zk, "fg-a", CAMERAS[:20], lambda: 0.0), Instance(zk, "fg-b", CAMERAS[:20], lambda: 0.0)
    settle(a, b)
    old = a.client.client_id
    assert old is not None
    zk.expire(old[0])  # the server expired a's session: its member and owner nodes are gone
    settle(b)
    assert b.watching == set(CAMERAS[:20])  # b took everything
    a.client.new_session()
    a.client.set_state("LOST")
    a.client.set_state("CONNECTED")
    a.coordinator.step()
    assert a.watching == set()  # stopped at once: b may watch them already
    settle(a, b)
    assert a.watching | b.watching == set(CAMERAS[:20]) and not a.watching & b.watching
    assert a.watching == {c for c in CAMERAS[:20] if owner_of(c, ["fg-a", "fg-b"]) == "fg-a"}


# ----------------------------------------------------------------------------- MQTT side of a move


def test_a_camera_that_moved_is_never_republished_after_a_reconnect(tmp_path: Path) -> None:
    publisher, client, _ = make(tmp_path)
    client.connect()
    publisher.publish_state("gate", state("ok"))
    publisher.publish_state("yard", state("ok"))
    publisher.process()
    for sent in list(client.sent):
        client.ack(sent.mid)
    publisher.forget_camera("gate")  # another instance watches gate now
    publisher.process()
    client.drop()
    client.connect()
    publisher.process()
    after = [s.topic for s in client.sent[3:]]
    assert "fg/yard/state" in after and "fg/gate/state" not in after


class Retained:
    def __init__(self) -> None:
        self.sent: list[str] = []
        self.forgotten: list[str] = []

    def publish_retained(self, topic: str, payload: str) -> None:
        self.sent.append(topic)

    def forget_retained(self, topic: str) -> None:
        self.forgotten.append(topic)

    def subscribe(self, topic: str, callback: Any) -> None:
        pass


@dataclass
class Monitor:
    camera: Any


def test_coordinated_discovery_announces_taken_cameras_with_the_owners_availability() -> None:
    publisher = Retained()
    ha = HomeAssistantDiscovery(publisher, "homeassistant", "fg", [], availability_topic="fg/instances/b1/available",
                                dynamic=True)  # fmt: skip
    ha.start()
    assert publisher.sent == []
    ha.camera_added(Monitor(type("Cam", (), {"name": "gate"})()))
    assert publisher.sent == ["homeassistant/binary_sensor/fg/gate/config",
                              "homeassistant/binary_sensor/fg/gate_tamper/config"]  # fmt: skip
    assert all(json.loads(p)["availability"][0]["topic"] == "fg/instances/b1/available" for p in ha.messages.values())
    ha.camera_removed("gate")
    assert publisher.forgotten == publisher.sent and ha.messages == {}


# ----------------------------------------------------------------------------- health endpoint


class App:
    def __init__(self, connected: bool, coordinator: Any = None) -> None:
        self.publisher = type("P", (), {"connected": connected, "is_alive": lambda self: True})()
        self.coordinator, self.monitors = coordinator, {}


def get(port: int, path: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}") if err.code != 404 else {}


def test_health_endpoint_answers_liveness_and_readiness() -> None:
    app = App(connected=False)
    server = HealthServer(app, "127.0.0.1", 0)
    server.start()
    try:
        assert get(server.port, "/healthz") == (200, {"alive": True, "problems": []})
        status, body = get(server.port, "/readyz")
        assert status == 503 and body["mqtt_connected"] is False
        app.publisher.connected = True
        assert get(server.port, "/readyz")[0] == 200
        app.coordinator = type("C", (), {"ready": False, "status": "connecting"})()
        assert get(server.port, "/readyz") == (503, {"ready": False, "mqtt_connected": True, "group": "connecting",
                                                     "cameras": []})  # fmt: skip
        assert get(server.port, "/nothing")[0] == 404
    finally:
        server.stop()
