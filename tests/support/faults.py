"""Fault-injection material for the integration tests (tests/integration/test_faults_*.py).

* **Oracle model + marker clips**: the shipped CNN is still training, so tests that need
  focus events deterministically run the daemon with a tiny TFLite model (from
  ``tests/unit/tflite_builder.py``) whose 9 outputs are the first 9 RGB bytes of the
  448x448 model input, i.e. the top-left 3 pixels.  Marker clips paint a 32x32 block in
  the top-left corner of every frame: red where the picture is sharp (class ``sharp``),
  blue where it is defocused (class ``b_0.75``: blurry at the default ``blurry_from``).
  Everything else is real: the RTSP server, PyAV decoding, preprocessing, the TFLite
  runtime, the debounce, the outbox, MQTT.  The defocused stretches really are
  defocused (sigma 8 at 1080p scale, like ``tests/support/clips.py``), so the same clips
  work with a trained model.
* **Damaged clips**: an mp4 whose samples carry garbage and truncated (zeroed) slice
  data, with the container intact so the RTSP server can still serve it.
* **Resolution change mid-stream**: two raw H.264 (Annex B) streams of different sizes
  concatenated into one ``.h264`` file; the server loops it, so the size changes twice
  per loop on one RTSP session.
* **TLS material**: CA, server certificate (``subjectAltName=IP:127.0.0.1``), client
  certificate and an unrelated CA, made with the openssl CLI; a mosquitto password file.
* **Evidence**: the daemon's own record of what it produced (its ``event ... stored
  (outbox row N)`` log lines, and the SQLite outbox itself).
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

RED_BGR = (0, 0, 255)  # → RGB bytes 255,0,0: argmax index 0 = "sharp"
BLUE_BGR = (255, 0, 0)  # → RGB bytes 0,0,255: argmax index 2 = "b_0.75" (blurry by default)
MARK = 32  # marker block size, pixels (two macroblocks: clean chroma)


# --------------------------------------------------------------------------- model


def oracle_model(path: Path) -> Path:
    """The tiny 1x448x448x3 → 1x9 uint8 model whose outputs are the top-left RGB bytes."""
    from tests.unit.tflite_builder import write_model

    path.parent.mkdir(parents=True, exist_ok=True)
    return write_model(path)


# --------------------------------------------------------------------------- clips


@dataclass(frozen=True)
class Part:
    """A stretch of a marker clip. ``kind``: sharp | blur | black | frozen (sharp, no motion).

    The marker is red (oracle: sharp) on sharp and frozen parts, blue (oracle: blurry) on
    blur parts and on black ones: a featureless frame is what a CNN would call blurry, so
    a black frame with a blue marker raises focus_lost unless the daemon screens it out.
    ``color`` (BGR) overrides the marker colour; ``marker=False`` leaves it out."""

    kind: str
    seconds: float
    sigma_1080: float = 8.0  # blur: Gaussian sigma at 1920 px wide scale
    marker: bool = True
    color: tuple[int, int, int] | None = None


def _frames(image: np.ndarray, parts: Sequence[Part], size: tuple[int, int],
            fps: int) -> Iterator[np.ndarray]:
    import cv2

    w, h = size
    ih, iw = image.shape[:2]
    scale = min(1.0, max(w / iw, h / ih) * 1.5)
    if scale < 1.0:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        ih, iw = image.shape[:2]
    room_x, room_y = iw - w, ih - h
    if room_x < 0 or room_y < 0:
        raise ValueError(f"image {iw}x{ih} smaller than {w}x{h}")
    counts = [round(p.seconds * fps) for p in parts]
    total = sum(counts)
    i = 0
    for part, n in zip(parts, counts, strict=True):
        for _ in range(n):
            # Pan there and back, at least 1 px per frame: consecutive frames always differ.
            u = 1.0 - abs(1.0 - 2.0 * i / max(total, 1))
            x = min(room_x, round(u * min(room_x, total // 2 + 1)))
            y = (room_y // 2) if room_y else 0
            if part.kind == "frozen":
                x = 0
            frame = np.ascontiguousarray(image[y:y + h, x:x + w])
            if part.kind == "blur":
                sigma = part.sigma_1080 * w / 1920.0
                frame = cv2.GaussianBlur(frame, (0, 0), sigmaX=sigma, sigmaY=sigma)
            elif part.kind == "black":
                frame = np.zeros_like(frame)
            elif part.kind not in ("sharp", "frozen"):
                raise ValueError(f"unknown part kind {part.kind!r}")
            if part.marker:
                default = BLUE_BGR if part.kind in ("blur", "black") else RED_BGR
                frame[:MARK, :MARK] = part.color or default
            yield frame
            i += 1


def encode(out: Path, frames: Iterable[np.ndarray], size: tuple[int, int], fps: int = 25,
           gop: int = 25, fmt: str | None = None, intra_qp: int | None = None) -> Path:
    """H.264 (PyAV's libx264, no B-frames, fixed GOP) into mp4, or raw Annex B for ``.h264``.

    ``intra_qp``: every frame an IDR at a constant QP, so identical input frames give
    bit-identical decoded frames (a frozen camera)."""
    import av

    out.parent.mkdir(parents=True, exist_ok=True)
    fmt = fmt or ("h264" if out.suffix == ".h264" else "mp4")
    tmp = out.with_name(out.name + ".part")
    container = av.open(str(tmp), mode="w", format=fmt)
    try:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, fps)
        g = 1 if intra_qp is not None else gop
        stream.codec_context.gop_size = g
        stream.codec_context.max_b_frames = 0
        opts = {"preset": "veryfast",
                "x264-params": f"keyint={g}:min-keyint={g}:scenecut=0:bframes=0:open-gop=0"}
        opts.update({"qp": str(intra_qp)} if intra_qp is not None else {"crf": "23"})
        stream.options = opts
        for n, image in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(image, format="bgr24")
            vf.pts, vf.time_base = n, Fraction(1, fps)
            for pkt in stream.encode(vf):
                container.mux(pkt)
        for pkt in stream.encode(None):
            container.mux(pkt)
    finally:
        container.close()
    tmp.replace(out)
    return out


def marker_clip(out: Path, image: np.ndarray, parts: Sequence[Part],
                size: tuple[int, int] = (640, 360), fps: int = 25, gop: int = 25,
                intra_qp: int | None = None) -> Path:
    """A clip of ``parts`` (see `Part`) from a sharp photo, with the oracle's colour marker."""
    return encode(out, _frames(image, parts, size, fps), size, fps, gop, intra_qp=intra_qp)


def concat_h264(out: Path, clips: Sequence[Path]) -> Path:
    """Raw Annex B H.264 of ``clips`` one after the other (each starts with SPS/PPS + IDR)."""
    import av
    from av.bitstream import BitStreamFilterContext

    data = bytearray()
    for clip in clips:
        with av.open(str(clip)) as c:
            stream = c.streams.video[0]
            bsf = BitStreamFilterContext("h264_mp4toannexb", stream)
            for pkt in c.demux(stream):
                for p in bsf.filter(pkt if pkt.size else None):
                    data += bytes(p)
    out.write_bytes(bytes(data))
    return out


def damage_clip(src: Path, dst: Path, every: int = 7, seed: int = 1) -> dict[str, int]:
    """Copy an mp4 and damage the slice data of every ``every``-th sample (keyframes too):
    alternately random bytes over a stretch of the slice (corrupt) and zeros from the
    middle to its end (truncated).  NAL length prefixes and headers stay intact, so the
    container parses and the RTSP server serves it; the decoder sees broken slices."""
    import av

    rng = np.random.default_rng(seed)
    buf = bytearray(src.read_bytes())
    stats = {"samples": 0, "corrupted": 0, "truncated": 0, "keyframes_hit": 0}
    with av.open(str(src)) as c:
        stream = c.streams.video[0]
        packets = [(p.pos, p.size, p.is_keyframe) for p in c.demux(stream) if p.size]
    for n, (pos, size, key) in enumerate(packets):
        stats["samples"] += 1
        if n == 0 or n % every or pos is None or pos < 0:
            continue
        # Walk the 4-byte length-prefixed NAL units; damage the largest one (the slice).
        nals, off = [], pos
        while off + 4 <= pos + size:
            length = int.from_bytes(buf[off:off + 4], "big")
            if length <= 0 or off + 4 + length > pos + size:
                break
            nals.append((off + 4, length))
            off += 4 + length
        if not nals:
            continue
        start, length = max(nals, key=lambda nal: nal[1])
        if length < 64:
            continue
        body = start + 16  # keep the NAL and slice headers
        if (n // every) % 2:
            k = min(length - 16, max(32, length // 3))
            buf[body:body + k] = rng.integers(0, 256, k, dtype=np.uint8).tobytes()
            stats["corrupted"] += 1
        else:
            mid = start + length // 2
            buf[mid:start + length] = bytes(start + length - mid)
            stats["truncated"] += 1
        stats["keyframes_hit"] += int(key)
    dst.write_bytes(bytes(buf))
    return stats


# --------------------------------------------------------------------------- TLS


def _openssl(*args: str, cwd: Path) -> None:
    r = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if r.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed: {r.stderr.strip()[-500:]}")


def make_tls_material(d: Path) -> dict[str, Path]:
    """ca.crt/ca.key, server.crt/key (SAN IP:127.0.0.1, signed by ca), client.crt/key
    (signed by ca), other-ca.crt (an unrelated CA: the "wrong CA")."""
    d.mkdir(parents=True, exist_ok=True)
    for name in ("ca", "other-ca"):
        _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                 "-keyout", f"{name}.key", "-out", f"{name}.crt", "-subj", f"/CN=focusguard test {name}",
                 cwd=d)
    (d / "server.ext").write_text("subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for name, cn in (("server", "127.0.0.1"), ("client", "focusguard-client")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={cn}", cwd=d)
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-out", f"{name}.crt", "-extfile", f"{name}.ext", cwd=d)
    return {
        "ca": d / "ca.crt", "server_cert": d / "server.crt", "server_key": d / "server.key",
        "client_cert": d / "client.crt", "client_key": d / "client.key", "other_ca": d / "other-ca.crt",
    }


def password_file(path: Path, users: dict[str, str]) -> Path:
    """A mosquitto password file (``mosquitto_passwd -b``)."""
    path.unlink(missing_ok=True)
    for n, (user, pw) in enumerate(users.items()):
        args = ["mosquitto_passwd", "-b"] + (["-c"] if n == 0 else []) + [str(path), user, pw]
        r = subprocess.run(args, capture_output=True, text=True, check=False)
        if r.returncode != 0:
            raise RuntimeError(f"mosquitto_passwd failed: {r.stderr.strip()}")
    return path


def tls_listener_config(tls: dict[str, Path], passwords: Path) -> str:
    """Extra mosquitto config: the (only) listener speaks TLS, wants a client certificate
    signed by the test CA, and a username/password from ``passwords``."""
    return (
        f"cafile {tls['ca']}\ncertfile {tls['server_cert']}\nkeyfile {tls['server_key']}\n"
        "require_certificate true\n"
        f"password_file {passwords}\nallow_anonymous false\n"
    )


# --------------------------------------------------------------------------- evidence

_STORED = re.compile(
    r"event (?P<id>[0-9a-f-]{36}) (?P<type>\w+) of (?P<camera>[\w-]+) at (?P<time>\S+) "
    r"stored \(outbox row (?P<row>\d+)\)"
)


def produced_events(log_text: str) -> list[dict[str, Any]]:
    """Events the daemon stored in its outbox, from its log, in order."""
    return [dict(m.groupdict(), row=int(m["row"])) for m in _STORED.finditer(log_text)]


def read_outbox(state_dir: Path) -> list[dict[str, Any]]:
    """Rows waiting in the daemon's outbox (read-only; fine while it runs or after a kill)."""
    db = state_dir / "outbox.sqlite3"
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT id, topic, payload FROM outbox ORDER BY id").fetchall()
    finally:
        conn.close()
    return [{"row": r[0], "topic": r[1], **json.loads(r[2])} for r in rows]
