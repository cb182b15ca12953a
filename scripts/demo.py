"""focusguard demo: a private broker, an RTSP camera playing a clip, the real daemon.

Run by ``bash scripts/setup.sh demo`` (or ``.venv/bin/python scripts/demo.py``).  It
starts mosquitto on a free loopback port (or uses ``--mqtt HOST:PORT``), serves
``demo/clip_focus_loss.mp4`` over RTSP (12 s sharp, 14 s defocused, 14 s sharp, looping),
writes a config into a temporary directory, runs ``focusguard run`` on it and prints the
MQTT traffic as it arrives.  It stops everything after ``focus_lost`` and
``focus_restored`` (or on Ctrl-C, or after ``--timeout`` seconds).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.daemon import Daemon, write_config  # noqa: E402
from tests.support.mqtt import Message, Mosquitto, MqttCollector  # noqa: E402
from tests.support.rtsp import RtspServer, rtsp_server_problem  # noqa: E402

DEMO_CLIP = REPO / "demo" / "clip_focus_loss.mp4"
PREFIX = "focusguard"
CAMERA = "demo_cam"


class Printer:
    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.last_state: tuple[str, str, str | None] | None = None

    def say(self, who: str, text: str) -> None:
        print(f"[{time.monotonic() - self.t0:6.1f}s] {who:<9} {text}", flush=True)

    def message(self, m: Message) -> None:
        short = m.topic[len(PREFIX) + 1 :] if m.topic.startswith(PREFIX + "/") else m.topic
        if m.topic.endswith("/events"):
            e = m.json()
            top = max(e["probabilities"].items(), key=lambda kv: kv[1], default=("-", 0.0))
            extra = f"class={e['class']} p={top[1]:.2f}" if e["class"] else ""
            extra += _figures(e)
            self.say("EVENT", f"{e['type']:<16} camera={e['camera']} {extra} ({e['time']})")
        elif m.topic.endswith("/state"):
            s = m.json()
            key = (s["focus"], s["stream"], s.get("tamper"))
            if key != self.last_state:  # print changes, not every analysis
                self.last_state = key
                tamper = f" tamper={s['tamper']}" if s.get("tamper") else ""
                self.say("state", f"{short}: focus={s['focus']} stream={s['stream']} class={s['class']}{tamper} (retained)")
        else:
            self.say("mqtt", f"{short} = {m.text}")


def _figures(e: dict[str, Any]) -> str:
    """The detector's figures behind an event, as text ("" when it has none)."""
    text = ""
    if e.get("p_defocus") is not None:  # detector fusion (the default): P(defocus) vs the camera's baseline
        text += f" p_defocus={e['p_defocus']:.2f}"
        if e.get("sharpness_ratio") is not None:
            text += f" sharpness_ratio={e['sharpness_ratio']:.2f}"
        if e.get("structure") is not None:
            text += f" structure={e['structure']:.2f}"
    elif e.get("baseline"):  # detector combined: the sharpness behind the verdict
        text += f" sharpness={e['sharpness']:.2f}/{e['baseline']:.2f}"
    if e.get("basis"):
        text += f" ({e.get('regime')}, {e['basis']})"
    if e.get("reason"):  # tamper_detected: covered | scene_changed
        text += f" reason={e['reason']}"
    return text


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clip", type=Path, default=DEMO_CLIP, help="H.264 clip to serve")
    ap.add_argument("--mqtt", metavar="HOST:PORT", help="use this broker instead of starting a private mosquitto")
    ap.add_argument("--timeout", type=float, default=150.0, help="give up after this many seconds (default 150)")
    ap.add_argument("--keep-running", action="store_true", help="do not stop after focus_restored (Ctrl-C to stop)")
    ap.add_argument("--model", type=Path, help="model file (default: the shipped one)")
    return ap.parse_args()


def main() -> int:
    args = parse_args()
    out = Printer()
    problem = rtsp_server_problem()
    if problem:
        print(f"demo: cannot run the RTSP server: {problem} (run: bash scripts/setup.sh demo)", file=sys.stderr)
        return 2
    if not args.clip.is_file():
        print(f"demo: no clip at {args.clip}", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="focusguard-demo-"))
    broker: Mosquitto | None = None
    rtsp: RtspServer | None = None
    daemon: Daemon | None = None
    sub: MqttCollector | None = None
    rc = 1
    try:
        if args.mqtt:
            host, _, port_s = args.mqtt.rpartition(":")
            host, port = host or "127.0.0.1", int(port_s)
            out.say("broker", f"using {host}:{port}")
        else:
            broker = Mosquitto(work / "mosquitto").start()
            host, port = broker.host, broker.port
            out.say("broker", f"mosquitto on {host}:{port} (private, log: {broker.log_path})")
        rtsp = RtspServer({f"/{CAMERA}": args.clip}, work / "rtsp").start()
        out.say(
            "camera",
            f"{rtsp.url('/' + CAMERA)} plays {args.clip.name} in a loop (12 s sharp, 14 s defocused, 14 s sharp)",
        )
        config = write_config(
            work / "focusguard.yaml",
            mqtt_host=host,
            mqtt_port=port,
            prefix=PREFIX,
            cameras={CAMERA: {"url": rtsp.url("/" + CAMERA)}},
            state_dir=work / "state",
            model={"path": str(args.model)} if args.model else None,
        )
        out.say("config", f"{config}:")
        for line in config.read_text().splitlines():
            print(f"{'':21}{line}")
        sub = MqttCollector(host, port, [f"{PREFIX}/#"]).start()
        sub.client.on_message = _chain(sub.client.on_message, out.message)
        out.say("mqtt", f"subscribed to {PREFIX}/# (also try: mosquitto_sub -h {host} -p {port} -t '{PREFIX}/#' -v)")
        daemon = Daemon(config, work).start()
        out.say("daemon", f"focusguard run --config {config} (pid {daemon.pid}, log: {daemon.log_path})")
        events = f"{PREFIX}/{CAMERA}/events"
        deadline = time.monotonic() + args.timeout
        seen: list[str] = []
        while True:
            if daemon.returncode is not None:
                out.say("daemon", f"exited with {daemon.returncode}:")
                print(daemon.log_tail(30), file=sys.stderr)
                return 1
            seen = [e.get("type", "") for e in sub.events(events)]
            if not args.keep_running and "focus_lost" in seen and "focus_restored" in seen[seen.index("focus_lost") :]:
                out.say("demo", "focus_lost and focus_restored seen: stopping")
                rc = 0
                break
            if not args.keep_running and time.monotonic() > deadline:
                out.say(
                    "demo", f"timed out after {args.timeout:g}s; events seen: {seen}; daemon log: {daemon.log_path}"
                )
                print(daemon.log_tail(20), file=sys.stderr)
                break
            time.sleep(0.2)
    except KeyboardInterrupt:
        out.say("demo", "interrupted: stopping")
        rc = 130
    finally:
        if daemon is not None:
            drc = daemon.terminate() if daemon.returncode is None else daemon.returncode
            out.say("daemon", f"stopped (exit {drc})")
            time.sleep(0.3)  # let "available = offline" arrive
        if sub is not None:
            sub.stop()
        if rtsp is not None:
            rtsp.stop()
        if broker is not None:
            broker.stop()
        if rc == 0:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"demo: files kept in {work}", file=sys.stderr)
    return rc


def _chain(first, second):  # type: ignore[no-untyped-def]
    def both(client, userdata, msg):  # type: ignore[no-untyped-def]
        first(client, userdata, msg)
        try:
            second(Message(msg.topic, bytes(msg.payload), bool(msg.retain), int(msg.qos)))
        except (ValueError, KeyError, json.JSONDecodeError) as err:
            print(f"demo: unexpected payload on {msg.topic}: {err}", file=sys.stderr)

    return both


if __name__ == "__main__":
    sys.exit(main())
