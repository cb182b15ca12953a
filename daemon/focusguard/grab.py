"""One thread per camera that reads the stream continuously and keeps only the newest frame.

Owns the video side: PyAV over RTSP/TCP with low-latency options, keyframes-only
decoding when the stream's keyframe interval fits the analysis interval (full decoding
otherwise; with analyses much further apart than keyframes, only the keyframes shortly
before the next analysis are decoded: `_DecodeDemand`), EOF or any PyAV error treated as
a disconnect, and reconnection with capped exponential backoff (0.5 s doubling to 10 s).
Reading continuously is what keeps frames fresh: polling a decoder once per interval falls
further behind live at every call.
The newest frame is kept as a PyAV frame and converted to BGR only when asked for, so
frames nobody analyses cost no conversion. URLs are only ever logged redacted.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

import av
import numpy as np
import numpy.typing as npt

from focusguard.config import KeyframesOnly
from focusguard.redact import redact_url, scrub

log = logging.getLogger(__name__)

# No `fflags=nobuffer`: it discards the packets read while probing, the first keyframe among
# them, so a long-GOP camera would show nothing (and go `stream_lost`) until its next keyframe.
RTSP_OPTIONS = {"rtsp_transport": "tcp", "analyzeduration": "500000", "probesize": "100000"}
NETWORK_OPTIONS = {"analyzeduration": "500000", "probesize": "100000"}
OPEN_TIMEOUT = (5.0, 3.0)  # (open, read) seconds; FFmpeg's own RTSP default is 30 s
BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 10.0
GOP_TOLERANCE = 1.5  # a keyframe gap this many analysis intervals long ends keyframes-only mode
DEMAND_LEAD_GOPS = 1.5  # keyframes only: decode again this many keyframe gaps before the next analysis
# One decoding thread, not PyAV's default slice threading: with slice threading FFmpeg
# conceals broken slices without flagging the frame corrupt, so smeared frames (which look
# blurry) would reach the analysis; frame threading flags them, but hands frames out one
# packet late, after the skip-to-next-keyframe below has let the following packet in.
# Measured with PyAV 18 / FFmpeg 8 on clips with damaged slices (tests/unit/test_grab_faults.py).
DECODE_THREAD_TYPE = "NONE"
DECODE_THREADS = 1


@dataclass(frozen=True)
class Frame:
    """A decoded frame with the monotonic and wall-clock times it was decoded at."""

    image_bgr: npt.NDArray[np.uint8]
    monotonic: float
    wall: float


class FrameSource(Protocol):
    """What the app needs from a grabber (fakes in tests implement the same)."""

    def start(self) -> None: ...

    def latest(self) -> Frame | None: ...

    @property
    def last_frame_monotonic(self) -> float | None: ...

    def stop(self) -> None: ...


@dataclass(frozen=True)
class _Decoded:
    frame: Any  # av.VideoFrame
    monotonic: float
    wall: float


def open_target(url: str) -> tuple[str, dict[str, str], bool]:
    """(what to pass to av.open, its options, whether it is a file to be read at native speed)."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("rtsp", "rtsps"):
        return url, dict(RTSP_OPTIONS), False
    if scheme in ("http", "https"):
        return url, dict(NETWORK_OPTIONS), False
    if scheme == "file":
        return unquote(urlsplit(url).path), {}, True
    return str(Path(url)), {}, True  # a plain path (tests, tools)


class StreamGrabber:
    """Background reader of one camera stream."""

    def __init__(
        self,
        name: str,
        url: str,
        interval_s: float = 1.0,
        keyframes_only: KeyframesOnly = "auto",
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        opener: Callable[..., Any] = av.open,
    ) -> None:
        self.name = name
        self._url = url
        self.redacted_url = redact_url(url)
        self.interval_s = interval_s
        self.keyframes_only = keyframes_only
        self._clock, self._wall_clock, self._opener = clock, wall_clock, opener
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._newest: _Decoded | None = None
        self._converted: tuple[_Decoded, Frame] | None = None
        self._last_monotonic: float | None = None
        self._thread: threading.Thread | None = None
        self.keyframes_mode = False  # what the current connection decodes
        self._demand = _DecodeDemand(interval_s)
        self.skipped_keyframes = 0  # keyframes not decoded because no analysis could use them
        self.connected = False
        self.reconnects = 0  # connection attempts after a disconnect or failed open (metrics.py)

    # ----------------------------------------------------------------- public API

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"grab-{self.name}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 6.0) -> None:
        """Ask the thread to end; waits at most `timeout` (a blocked open/read ends on its own timeout)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def last_frame_monotonic(self) -> float | None:
        with self._lock:
            return self._last_monotonic

    def latest(self) -> Frame | None:
        """The newest decoded frame as BGR (converted once, on first request), or None."""
        with self._lock:
            newest, converted = self._newest, self._converted
        if newest is None:
            return None
        if converted is not None and converted[0] is newest:
            return converted[1]
        self._demand.taken_at = self._clock()  # a new frame handed out: the analysis cadence (_DecodeDemand)
        image = newest.frame.to_ndarray(format="bgr24")
        frame = Frame(image_bgr=image, monotonic=newest.monotonic, wall=newest.wall)
        with self._lock:
            self._converted = (newest, frame)
        return frame

    # ----------------------------------------------------------------- thread

    def _run(self) -> None:
        backoff = BACKOFF_START_S
        last_error = ""
        while not self._stop.is_set():
            got_frames = False
            try:
                got_frames = self._session()
                problem = "stream ended (EOF)"
            except Exception as err:
                problem = f"{type(err).__name__}: {scrub(str(err), self._url)}"
            finally:
                self.connected = False
            if self._stop.is_set():
                break
            if got_frames:
                backoff = BACKOFF_START_S
            # Repeating the same failure every 10 s would flood the log: say it once.
            level = logging.DEBUG if problem == last_error and not got_frames else logging.WARNING
            log.log(level, "camera %s: %s; reconnecting in %.1f s", self.name, problem, backoff)
            last_error = problem
            self._stop.wait(backoff)
            self.reconnects += 1
            backoff = min(backoff * 2, BACKOFF_MAX_S)
        log.debug("camera %s: grabber stopped", self.name)

    def _session(self) -> bool:
        """Read one connection until EOF, error or stop; True if it produced frames."""
        target, options, is_file = open_target(self._url)
        container = self._opener(target, options=options, timeout=OPEN_TIMEOUT)
        got_frames = False
        try:
            if not container.streams.video:
                raise ValueError("no video stream")
            stream = container.streams.video[0]
            stream.codec_context.thread_type = DECODE_THREAD_TYPE  # so is_corrupt works (see above)
            stream.codec_context.thread_count = DECODE_THREADS
            self.keyframes_mode = self.keyframes_only is True
            self._set_skip(stream)
            self.connected = True
            log.info(
                "camera %s: connected to %s (%s %dx%d, %s)",
                self.name,
                self.redacted_url,
                stream.codec_context.name,
                stream.codec_context.width,
                stream.codec_context.height,
                "keyframes only" if self.keyframes_mode else "decoding every frame",
            )
            auto = _AutoKeyframes(self.interval_s)
            pacer = _Pacer(self._clock, self._stop) if is_file else None
            seen_keyframe = skipping = False
            for packet in container.demux(stream):
                if self._stop.is_set():
                    break
                if packet.size == 0:
                    continue  # the flush packet at EOF
                # Decoding from mid-GOP yields smeared frames that look blurry: start at a keyframe.
                seen_keyframe = seen_keyframe or packet.is_keyframe
                if not seen_keyframe:
                    continue
                seconds = float(packet.pts * packet.time_base) if packet.pts is not None else None
                if packet.is_keyframe and seconds is not None and self.keyframes_only == "auto":
                    self._auto_mode(stream, auto, seconds)
                if pacer is not None and seconds is not None:
                    pacer.wait_until(seconds)
                if packet.is_keyframe:  # keyframes only and no analysis due soon: skip this GOP
                    wanted = self._demand.keyframe(seconds, self._clock())
                    skipping = self.keyframes_mode and not wanted
                    if skipping:
                        self.skipped_keyframes += 1
                        with self._lock:
                            self._last_monotonic = self._clock()  # a keyframe arrived: the stream is alive
                if skipping:
                    continue
                try:
                    frames = packet.decode()
                except av.error.InvalidDataError as err:
                    # One bad packet is not worth a reconnect, but frames that reference it
                    # would be smeared (and look blurry): wait for the next keyframe.
                    log.debug("camera %s: undecodable packet (%s); waiting for a keyframe", self.name, err)
                    seen_keyframe = False
                    continue
                for frame in frames:
                    if frame.is_corrupt:
                        seen_keyframe = False
                        continue
                    self._store(frame)
                    got_frames = True
        finally:
            container.close()
        return got_frames

    def _auto_mode(self, stream: Any, auto: _AutoKeyframes, seconds: float) -> None:
        """Feed a keyframe time to the auto policy and apply its verdict."""
        verdict = auto.keyframe(seconds)
        if verdict is None:
            return
        log.info(
            "camera %s: keyframe interval %.2f s %s analysis interval %.2f s: decoding %s",
            self.name,
            auto.last_gap,
            "fits the" if verdict else "exceeds the",
            self.interval_s,
            "keyframes only" if verdict else "every frame",
        )
        if verdict != self.keyframes_mode:
            self.keyframes_mode = verdict
            self._set_skip(stream)

    def _set_skip(self, stream: Any) -> None:
        stream.codec_context.skip_frame = "NONKEY" if self.keyframes_mode else "DEFAULT"

    def _store(self, frame: Any) -> None:
        decoded = _Decoded(frame=frame, monotonic=self._clock(), wall=self._wall_clock())
        with self._lock:
            self._newest = decoded
            self._last_monotonic = decoded.monotonic


class _AutoKeyframes:
    """`keyframes_only: auto` for one connection: measure the keyframe interval, then decide.

    Full decoding while measuring; keyframes only if the first interval fits the analysis
    interval; back to full decoding for good if a later interval is much longer
    (variable-GOP cameras), because then keyframes alone would leave frames stale.
    """

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.state = "measuring"
        self.last_gap = 0.0
        self._last: float | None = None

    def keyframe(self, seconds: float) -> bool | None:
        """The new keyframes-only setting when a decision is made, else None."""
        last, self._last = self._last, seconds
        if last is None or seconds <= last or self.state == "full":
            return None
        self.last_gap = seconds - last
        if self.state == "measuring":
            self.state = "keyframes" if self.last_gap <= self.interval_s else "full"
            return self.state == "keyframes"
        if self.last_gap > self.interval_s * GOP_TOLERANCE:
            self.state = "full"
            return False
        return None


class _DecodeDemand:
    """Keyframes only, analyses far apart: decode just the keyframes the next analysis can use.

    The app takes a frame (`latest()`) every `interval_s`; with a keyframe every `gap`
    seconds (gap much shorter than the interval, e.g. GOP 1 s and one analysis per 10 s)
    decoding every keyframe costs interval/gap decodes per analysis, nearly all thrown away.
    After a frame was taken, keyframes are skipped until `DEMAND_LEAD_GOPS` gaps before the
    next analysis is due, so the frame analysed is at most 1.5 gaps old (1 gap when every
    keyframe is decoded). Until a frame has been taken and a gap measured, and whenever the
    analyses stop coming, every keyframe is decoded.
    """

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.taken_at: float | None = None  # monotonic time `latest()` last handed out a new frame
        self.gap: float | None = None
        self._last_key: float | None = None

    def keyframe(self, seconds: float | None, now: float) -> bool:
        """Whether to decode the keyframe at stream time `seconds`, received at monotonic `now`."""
        if seconds is not None:
            if self._last_key is not None and seconds > self._last_key:
                self.gap = seconds - self._last_key
            self._last_key = seconds
        if self.taken_at is None or self.gap is None:
            return True
        return now >= self.taken_at + self.interval_s - DEMAND_LEAD_GOPS * self.gap


class _Pacer:
    """Reads files at their native frame rate so a file behaves like a live camera."""

    def __init__(self, clock: Callable[[], float], stop: threading.Event) -> None:
        self._clock, self._stop = clock, stop
        self._origin: tuple[float, float] | None = None

    def wait_until(self, stream_seconds: float) -> None:
        if self._origin is None:
            self._origin = (self._clock(), stream_seconds)
            return
        delay = self._origin[0] + (stream_seconds - self._origin[1]) - self._clock()
        if delay > 0:
            self._stop.wait(delay)
