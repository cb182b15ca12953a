#!/usr/bin/python3
"""RTSP test server: serves H.264 files over RTSP without re-encoding, looping forever.

Runs as its own process under Debian's ``/usr/bin/python3`` (it needs ``gi`` and
gst-rtsp-server 1.22 from apt; the project venv cannot import them)::

    /usr/bin/python3 tests/support/rtsp_server.py --port 0 \\
        --mount /cam1=clip.mp4 --mount /cam2=other.mp4

Each clip is parsed once at start (``filesrc ! parsebin ! h264parse ! appsink``, Annex B
access units with SPS/PPS before every IDR).  Every RTSP client gets its own pipeline
``appsrc ! h264parse ! rtph264pay`` that pushes those access units from the start of the
file (a keyframe; ``--start-frame N`` starts mid-GOP like a real camera) with fresh,
monotonic timestamps (n x frame duration), looping forever; the RTSP sinks pace it to
real time (after a start-up burst of about 1 s).  Binds 127.0.0.1 (``--host`` to change);
``--port 0`` picks a free port.  When listening it prints one line on stdout::

    READY rtsp://127.0.0.1:PORT

then one ``MOUNT rtsp://127.0.0.1:PORT/cam1 frames=N fps=F`` line per mount.  SIGTERM
or SIGINT stops it (exit 0).  Importable from stdlib-only code: nothing here runs at
import time except definitions, and ``gi`` is imported lazily in ``main``.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Clip:
    path: str
    units: list[tuple[bytes, bool]] = field(default_factory=list)  # (access unit, keyframe)
    caps: str = ""
    fps_n: int = 25
    fps_d: int = 1
    parameter_sets: bytes = b""  # SPS and PPS NAL units (Annex B) of the first keyframe

    @property
    def frame_ns(self) -> int:
        return int(1_000_000_000 * self.fps_d / self.fps_n)


def parse_clip(Gst: Any, path: str) -> Clip:
    """Read every H.264 access unit of ``path`` into memory (no decoding)."""
    pipe = Gst.parse_launch(
        "filesrc name=src ! parsebin ! h264parse config-interval=-1 ! "
        "video/x-h264,stream-format=byte-stream,alignment=au ! "
        "appsink name=sink sync=false max-buffers=0"
    )
    pipe.get_by_name("src").set_property("location", path)
    sink = pipe.get_by_name("sink")
    clip = Clip(path)
    if not os.path.isfile(path):
        raise RuntimeError(f"{path}: no such file")
    bus = pipe.get_bus()
    pipe.set_state(Gst.State.PLAYING)
    deadline = time.monotonic() + 120.0
    try:
        while True:
            sample = sink.emit("try-pull-sample", 200 * Gst.MSECOND)
            msg = bus.pop_filtered(Gst.MessageType.ERROR)
            if msg is not None:
                err, dbg = msg.parse_error()
                raise RuntimeError(f"{path}: {err.message} ({dbg})")
            if sample is None:
                if sink.get_property("eos"):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{path}: parsing timed out")
                continue
            if not clip.caps:
                caps = sample.get_caps()
                clip.caps = caps.to_string()
                s = caps.get_structure(0)
                ok, n, d = s.get_fraction("framerate")
                if ok and n > 0 and d > 0:
                    clip.fps_n, clip.fps_d = n, d
            buf = sample.get_buffer()
            ok, info = buf.map(Gst.MapFlags.READ)
            if not ok:
                raise RuntimeError(f"{path}: cannot map buffer")
            try:
                data = bytes(info.data)
            finally:
                buf.unmap(info)
            key = not buf.has_flags(Gst.BufferFlags.DELTA_UNIT)
            clip.units.append((data, key))
    finally:
        pipe.set_state(Gst.State.NULL)
    if not clip.units:
        raise RuntimeError(f"{path}: no H.264 access units found")
    if not clip.units[0][1]:
        raise RuntimeError(f"{path}: does not start with a keyframe")
    params = [nal for nal in split_nals(clip.units[0][0]) if nal and (nal[0] & 0x1F) in (7, 8)]
    clip.parameter_sets = b"".join(b"\x00\x00\x00\x01" + nal for nal in dict.fromkeys(params))
    return clip


def split_nals(au: bytes) -> list[bytes]:
    """NAL units of an Annex B access unit (start codes removed)."""
    out, i = [], au.find(b"\x00\x00\x01")
    while i >= 0:
        j = au.find(b"\x00\x00\x01", i + 3)
        end = len(au) if j < 0 else (j - 1 if au[j - 1] == 0 else j)
        out.append(au[i + 3 : end])
        i = j
    return out


class Feeder:
    """Pushes a clip's access units into one client's appsrc, looping, fresh timestamps."""

    def __init__(self, Gst: Any, clip: Clip, appsrc: Any, start_frame: int = 0) -> None:
        self.Gst = Gst
        self.clip = clip
        self.appsrc = appsrc
        self.n = 0  # access units pushed so far (monotonic over loops): the timestamp
        self.start = start_frame % len(clip.units)
        appsrc.connect("need-data", self.on_need_data)

    def on_need_data(self, src: Any, _length: int) -> None:
        Gst = self.Gst
        units = self.clip.units
        dur = self.clip.frame_ns
        # Push a few units per call (keeps Python overhead low); the appsrc queue and
        # the RTSP sinks (which sync to the clock) pace the stream to real time.
        for _ in range(5):
            data, key = units[(self.start + self.n) % len(units)]
            if self.n == 0 and not key:
                # Mid-GOP start, like a real camera: the client gets the parameter sets
                # (as a camera's SDP would give them) but must wait for the next IDR.
                data = self.clip.parameter_sets + data
            buf = Gst.Buffer.new_wrapped(data)
            buf.pts = self.n * dur
            buf.dts = self.n * dur
            buf.duration = dur
            if not key:
                buf.set_flags(Gst.BufferFlags.DELTA_UNIT)
            self.n += 1
            if src.emit("push-buffer", buf) != Gst.FlowReturn.OK:
                return


def build_server(
    Gst: Any, GstRtspServer: Any, host: str, port: int, mounts: dict[str, Clip], start_frame: int = 0
) -> Any:
    server = GstRtspServer.RTSPServer()
    server.set_address(host)
    server.set_service(str(port))
    mt = server.get_mount_points()
    feeders: list[Feeder] = []  # keep references alive per media

    for mount, clip in mounts.items():
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(
            "( appsrc name=src is-live=false format=time stream-type=stream "
            "max-bytes=2000000 ! "
            "rtph264pay name=pay0 pt=96 config-interval=0 )"
        )
        factory.set_shared(False)  # every client starts at the clip's first keyframe
        factory.set_eos_shutdown(False)
        # RTP over TCP and UDP both allowed; focusguard asks for TCP.

        def on_configure(_factory: Any, media: Any, clip: Clip = clip) -> None:
            element = media.get_element()
            appsrc = element.get_by_name("src")
            appsrc.set_property("caps", Gst.Caps.from_string(clip.caps))
            feeder = Feeder(Gst, clip, appsrc, start_frame)
            feeders.append(feeder)
            media.connect("unprepared", lambda *_: feeders.remove(feeder) if feeder in feeders else None)

        factory.connect("media-configure", on_configure)
        mt.add_factory(mount, factory)
    return server


def parse_mount(text: str) -> tuple[str, str]:
    mount, sep, path = text.partition("=")
    if not sep or not mount.startswith("/") or not path:
        raise argparse.ArgumentTypeError(f"--mount wants /NAME=FILE, got {text!r}")
    return mount, path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument(
        "--mount",
        type=parse_mount,
        action="append",
        required=True,
        metavar="/NAME=FILE",
        help="serve FILE (H.264 mp4/mkv/ts) at /NAME",
    )
    ap.add_argument(
        "--start-frame",
        type=int,
        default=0,
        metavar="N",
        help="each client starts at access unit N (mid-GOP, like a real camera: "
        "decoding must wait for the next keyframe); default 0",
    )
    args = ap.parse_args(argv)

    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer

    Gst.init(None)
    mounts: dict[str, Clip] = {}
    for mount, path in args.mount:
        try:
            mounts[mount] = parse_clip(Gst, path)
        except Exception as err:  # any parse failure: one line, exit 2
            print(f"rtsp_server: {err}", file=sys.stderr, flush=True)
            return 2

    server = build_server(Gst, GstRtspServer, args.host, args.port, mounts, args.start_frame)
    loop = GLib.MainLoop()
    if server.attach(None) == 0:
        print(f"rtsp_server: cannot listen on {args.host}:{args.port}", file=sys.stderr, flush=True)
        return 3
    port = server.get_bound_port()

    def stop(*_: Any) -> bool:
        loop.quit()
        return GLib.SOURCE_REMOVE

    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, sig, stop)

    base = f"rtsp://{args.host}:{port}"
    print(f"READY {base}", flush=True)
    for mount, clip in mounts.items():
        print(f"MOUNT {base}{mount} frames={len(clip.units)} fps={clip.fps_n / clip.fps_d:g}", flush=True)
    loop.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
