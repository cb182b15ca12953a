"""Many boxes: 2,000 simulated cameras over 20 focusguard instances on this box, one ZooKeeper.

    python -m bench.many_boxes            # 2,000 cameras, 20 instances (about 4 minutes)
    python -m bench.many_boxes --quick    # 200 cameras, 4 instances

Each instance is the real daemon (`FocusGuard`: real coordination through kazoo, real
MQTT publisher to a real mosquitto, the shipped model loaded) with a simulated frame source
instead of RTSP: a new 320x180 synthetic frame every `interval_s` (10 s), judged by the
`laplacian` detector, so that 2,000 cameras fit on 2 cores. Analysis cost per camera is
measured elsewhere (bench/RESULTS_cascade.md); this bench measures coordination:
- start-up: time until every camera's owner node in ZooKeeper names the instance rendezvous
  hashing gives it (all 20 started at once);
- steady state: ZooKeeper requests per second (`mntr` zk_packets_received, over a window
  in which nothing else talks to ZooKeeper, once every camera's first verdict is stored)
  and resident memory per instance (/proc);
- rebalance: after `kill -9` of one instance (its session must expire first: session
  timeout 10 s), after a SIGTERM (it hands its cameras over) and when a new instance joins:
  time until every owner node is right again, and how many cameras moved.
Writes bench/RESULTS_many_boxes.md and bench/results/many_boxes.json.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import REPO, RESULTS, broker, machine, rss_bytes

SESSION_S = 10.0
INTERVAL_S = 10.0


# ----------------------------------------------------------------------------- one instance (a child process)


class SimulatedCamera:
    """A frame source without a network: a fresh synthetic frame each `interval_s` (noise over a fixed mosaic)."""

    def __init__(self, name: str, interval_s: float) -> None:
        seed = sum(map(ord, name))
        self._base = np.random.default_rng(seed).integers(0, 255, (180, 320, 3), dtype=np.uint8)
        self._interval, self._frame, self._made = interval_s, None, 0.0
        self._rng = np.random.default_rng(seed + 1)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    @property
    def last_frame_monotonic(self) -> float:
        return time.monotonic()

    def latest(self) -> Any:
        from focusguard.sources.grab import Frame

        now = time.monotonic()
        if self._frame is None or now - self._made >= self._interval:
            noise = self._rng.integers(0, 8, self._base.shape, dtype=np.uint8)
            self._frame, self._made = Frame(self._base + noise, now, time.time()), now
        return self._frame


def run_instance(config_path: str) -> int:
    from focusguard.commands.common_cli import setup_logging
    from focusguard.operate.app import FocusGuard
    from focusguard.settings.config import load_config

    config = load_config(config_path)
    setup_logging(config.log_level)
    app = FocusGuard(config, grabber_factory=lambda camera: SimulatedCamera(camera.name, camera.interval_s))
    app.run()
    return 0


# ----------------------------------------------------------------------------- the bench


def write_config(path: Path, name: str, cameras: int, zk_hosts: str, site: str, mqtt_port: int) -> Path:
    import yaml

    config = {
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "topic_prefix": "bench/site"},
        "state_dir": str(path.parent / f"state-{name}"),
        "log_level": "info",
        "homeassistant": {"discovery": False},
        "metrics": {"stats_interval_s": 0},
        "model": {"interpreters": 1, "threads": 1},
        "coordination": {"instance_id": name,
                         "zookeeper": {"hosts": zk_hosts, "path": site, "session_timeout_s": SESSION_S}},
        "defaults": {"detector": "laplacian", "interval_s": INTERVAL_S, "stream_timeout_s": 60.0},
        "cameras": {f"cam{i:04d}": {"url": f"rtsp://192.0.2.1/cam{i:04d}"} for i in range(cameras)},
    }  # fmt: skip
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


class Fleet:
    def __init__(self, workdir: Path, cameras: int, zk_hosts: str, site: str, mqtt_port: int) -> None:
        self.workdir, self.cameras, self.zk_hosts, self.site, self.mqtt_port = workdir, cameras, zk_hosts, site, \
            mqtt_port
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, name: str) -> None:
        config = write_config(self.workdir / f"{name}.yaml", name, self.cameras, self.zk_hosts, self.site,
                              self.mqtt_port)  # fmt: skip
        log = (self.workdir / f"{name}.log").open("ab")
        env = {**os.environ, "PYTHONPATH": f"{REPO / 'daemon'}:{REPO}"}
        self.procs[name] = subprocess.Popen([sys.executable, "-m", "bench.many_boxes", "--instance", str(config)],
                                            stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)  # fmt: skip

    def kill9(self, name: str) -> None:
        self.procs[name].send_signal(signal.SIGKILL)
        self.procs.pop(name).wait(10)

    def terminate(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for name in list(self.procs):
            self.terminate(name)


def owners(client: Any, site: str) -> dict[str, str]:
    path = f"{site}/owners"
    if not client.exists(path):
        return {}
    names = client.get_children(path)
    pending = [(n, client.get_async(f"{path}/{n}")) for n in names]
    found = {}
    for name, result in pending:
        try:
            found[name] = result.get(timeout=10)[0].decode()
        except Exception:  # deleted meanwhile
            pass
    return found


def wait_converged(client: Any, site: str, cameras: list[str], members: list[str], timeout: float) -> float:
    from focusguard.operate.coordination import owner_of

    expected = {c: owner_of(c, members) for c in cameras}
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if len(client.get_children(f"{site}/owners")) == len(cameras) and owners(client, site) == expected:
            return time.monotonic() - started
        time.sleep(0.25)
    raise TimeoutError(f"owners not converged to {len(members)} members in {timeout:g} s")


def connection_drops(work: Path) -> int:
    """How often an instance's ZooKeeper connection dropped (kazoo logs each), all instances."""
    return sum(p.read_text(errors="replace").count("Zookeeper connection lost") for p in work.glob("fg-*.log"))


def errors_logged(work: Path) -> int:
    return sum(p.read_text(errors="replace").count(" ERROR ") for p in work.glob("fg-*.log"))


def zk_packets(zk: Any) -> int:
    return int(zk.mntr().get("zk_packets_received", "0"))


def run(quick: bool) -> dict[str, Any]:
    from kazoo.client import KazooClient

    from focusguard.operate.coordination import owner_of
    from tests.support.zookeeper import ZooKeeper

    n_cameras, n_instances = (200, 4) if quick else (2000, 20)
    cameras = [f"cam{i:04d}" for i in range(n_cameras)]
    names = [f"fg-{i:02d}" for i in range(n_instances)]
    site = "/focusguard/bench"
    result: dict[str, Any] = {"cameras": n_cameras, "instances": n_instances, "session_timeout_s": SESSION_S,
                              "interval_s": INTERVAL_S, "machine": machine()}  # fmt: skip
    RESULTS.joinpath("work").mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="many-boxes-", dir=RESULTS / "work") as tmp:
        work = Path(tmp)
        zk = ZooKeeper(work / "zk").start()
        client = KazooClient(hosts=zk.hosts, timeout=SESSION_S)
        client.start(timeout=20)
        client.ensure_path(f"{site}/owners")
        try:
            with broker(work / "mqtt") as mqtt:
                fleet = Fleet(work, n_cameras, zk.hosts, site, mqtt.port)
                try:
                    print(f"starting {n_instances} instances for {n_cameras} cameras", flush=True)
                    t0 = time.monotonic()
                    for name in names:
                        fleet.start(name)
                    wait_converged(client, site, cameras, names, 600.0)
                    result["startup_s"] = round(time.monotonic() - t0, 1)
                    print(f"  all cameras owned as hashed: {result['startup_s']} s after the start", flush=True)

                    # settle: a camera's first "ok" verdict goes into ZooKeeper once, after restore_votes (6)
                    # analyses, i.e. about 60 s after it was taken; measure after that
                    time.sleep(8 * INTERVAL_S)
                    window = 30.0
                    before = zk_packets(zk)
                    time.sleep(window)
                    result["zk_requests_per_s_steady"] = round((zk_packets(zk) - before) / window, 2)
                    result["zk_connections_dropped_by_then"] = connection_drops(work)
                    result["loadavg_1min_steady"] = round(os.getloadavg()[0], 2)
                    rss = [rss_bytes(p.pid) / 2**20 for p in fleet.procs.values()]
                    result["rss_mib"] = {"median": round(float(np.median(rss)), 1), "max": round(max(rss), 1),
                                         "cameras_per_instance": n_cameras / n_instances}  # fmt: skip
                    print(f"  steady: {result['zk_requests_per_s_steady']} ZooKeeper requests/s, "
                          f"RSS median {result['rss_mib']['median']} MiB per instance", flush=True)

                    alive = list(names)
                    steps = [("kill -9", "kill9", names[0], fleet.kill9),
                             ("SIGTERM", "sigterm", names[1], fleet.terminate)]
                    for label, key, victim, action in steps:
                        moved = sum(owner_of(c, alive) == victim for c in cameras)
                        alive.remove(victim)
                        before, t = zk_packets(zk), time.monotonic()
                        action(victim)
                        took = wait_converged(client, site, cameras, alive, SESSION_S + 120.0)
                        took = round(time.monotonic() - t, 2)
                        result[f"rebalance_{key}"] = {
                            "seconds": took, "cameras_moved": moved,
                            "zk_requests": zk_packets(zk) - before}  # fmt: skip
                        print(f"  {label} of {victim}: its {moved} cameras re-owned in {took} s", flush=True)
                    joiner = f"fg-{n_instances:02d}"
                    alive.append(joiner)
                    moved = sum(owner_of(c, alive) == joiner for c in cameras)
                    before, t = zk_packets(zk), time.monotonic()
                    fleet.start(joiner)
                    wait_converged(client, site, cameras, alive, 300.0)
                    took = round(time.monotonic() - t, 2)
                    result["rebalance_join"] = {"seconds": took, "cameras_moved": moved,
                                                "zk_requests": zk_packets(zk) - before}  # fmt: skip
                    print(f"  {joiner} joined: {moved} cameras moved to it in {took} s (process start included)",
                          flush=True)
                finally:
                    fleet.stop_all()
                    result["zk_connections_dropped_total"] = connection_drops(work)
                    result["errors_logged"] = errors_logged(work)
        finally:
            client.stop()
            client.close()
            zk.stop()
    return result


def write_results(result: dict[str, Any], quick: bool) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "many_boxes.json").write_text(json.dumps(result, indent=1))
    out = REPO / "bench" / ("RESULTS_many_boxes_quick.md" if quick else "RESULTS_many_boxes.md")
    kill, term, join = result["rebalance_kill9"], result["rebalance_sigterm"], result["rebalance_join"]
    cpu = f"{result['machine'].get('Model name', '?')}, {result['machine'].get('nproc')} cores"
    lines = [
        "# Many boxes: coordination through ZooKeeper (`python -m bench.many_boxes`)",
        "",
        f"{result['cameras']} simulated cameras over {result['instances']} focusguard instances on one box "
        f"({cpu}), one standalone ZooKeeper 3.8 (Debian), session timeout {result['session_timeout_s']:g} s; "
        f"each camera analysed every {result['interval_s']:g} s (laplacian detector on synthetic frames: the "
        "analysis cost is measured in RESULTS_cascade.md).",
        "",
        "| measure | value |",
        "|---|---|",
        f"| start-up: all cameras owned as hashed, all instances started at once | {result['startup_s']} s |",
        f"| ZooKeeper requests per second, steady state (all instances) | {result['zk_requests_per_s_steady']} |",
        f"| resident memory per instance ({result['rss_mib']['cameras_per_instance']:g} cameras each), median / max"
        f" | {result['rss_mib']['median']} / {result['rss_mib']['max']} MiB |",
        f"| rebalance after `kill -9` of one instance ({kill['cameras_moved']} cameras) | {kill['seconds']} s "
        f"(session timeout included), {kill['zk_requests']} ZooKeeper requests |",
        f"| rebalance after SIGTERM of one instance ({term['cameras_moved']} cameras) | {term['seconds']} s, "
        f"{term['zk_requests']} ZooKeeper requests |",
        f"| a new instance joins ({join['cameras_moved']} cameras move to it) | {join['seconds']} s (its process "
        f"start and model load included), {join['zk_requests']} ZooKeeper requests |",
        f"| ZooKeeper connections dropped (all instances: at steady state / whole run) | "
        f"{result.get('zk_connections_dropped_by_then', '?')} / {result.get('zk_connections_dropped_total', '?')} |",
        f"| load average (1 min) at steady state, 2 cores | {result.get('loadavg_1min_steady', '?')} |",
        "",
        "Rebalance time: from the signal (or the process start) until every camera's owner node in ZooKeeper "
        "names the instance rendezvous hashing gives it among the live ones, polled every 0.25 s "
        "(the poll's own requests are counted in the rebalance rows, not in the steady state).",
    ]
    out.write_text("\n".join(lines) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200 cameras over 4 instances")
    parser.add_argument("--instance", metavar="CONFIG", help=argparse.SUPPRESS)  # a child process of the bench
    args = parser.parse_args(argv)
    if args.instance:
        return run_instance(args.instance)
    result = run(args.quick)
    print(f"written: {write_results(result, args.quick)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
