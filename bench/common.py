"""Shared bench helpers: process CPU time and RSS from /proc, machine facts, test clips, services."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
CLIPS = RESULTS / "clips"
TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")

if str(REPO) not in sys.path:  # tests.support is imported from the repository root
    sys.path.insert(0, str(REPO))


def cpu_seconds(pid: int | str = "self") -> float:
    """utime + stime of a process (all its threads) from /proc/<pid>/stat, in seconds."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # fields 14 and 15 of stat(5)


def rss_bytes(pid: int | str = "self") -> int:
    """Resident set size from /proc/<pid>/statm."""
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


class CpuWindow:
    """CPU share of one core of a process over a wall-clock window: `with CpuWindow(pid) as w: ...; w.share`."""

    def __init__(self, pid: int | str = "self") -> None:
        self.pid = pid
        self.share = 0.0
        self.seconds = 0.0
        self.cpu = 0.0

    def __enter__(self) -> CpuWindow:
        self._cpu0, self._t0 = cpu_seconds(self.pid), time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cpu = cpu_seconds(self.pid) - self._cpu0
        self.seconds = time.monotonic() - self._t0
        self.share = self.cpu / self.seconds if self.seconds > 0 else 0.0


def machine() -> dict[str, Any]:
    """CPU model and cores (lscpu), kernel, Python, key package versions, load at the start."""
    info: dict[str, Any] = {"python": platform.python_version(), "kernel": platform.release()}
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            key, _, value = line.partition(":")
            if key.strip() in ("Model name", "CPU(s)", "Thread(s) per core", "Flags"):
                if key.strip() == "Flags":
                    value = " ".join(f for f in value.split() if f in ("avx2", "avx512f", "avx512_vnni"))
                info[key.strip()] = value.strip()
    except OSError:
        pass
    info["nproc"] = os.cpu_count()
    info["loadavg_at_start"] = os.getloadavg()
    import av
    import cv2

    info["av"] = av.__version__
    info["opencv"] = cv2.__version__
    try:
        from importlib.metadata import version

        info["ai_edge_litert"] = version("ai-edge-litert")
    except Exception:
        pass
    return info


def busy_processes(limit: int = 5) -> list[str]:
    """The busiest other processes right now (a benchmark on a shared machine should say so)."""
    out = subprocess.run(["ps", "-eo", "pcpu,comm,args", "--sort=-pcpu"], capture_output=True, text=True,
                         check=False).stdout.splitlines()[1 : limit + 1]
    return [" ".join(line.split()[:6])[:120] for line in out]


# --------------------------------------------------------------------------- clips


def mosaic(width: int, height: int) -> np.ndarray:
    """A detailed canvas of at least width x height from the training photos (native 1920-wide photos
    side by side, not upscaled), falling back to the test photo tiled."""
    import cv2

    from tests.support import clips

    sources = sorted((REPO / "models" / "work" / "sources" / "debian").glob("*.jpg"))
    images = [cv2.imread(str(p), cv2.IMREAD_COLOR) for p in sources]
    images = [im for im in images if im is not None and im.shape[1] >= 1920 and im.shape[0] >= 1080]
    if not images:
        images = [clips.load_image(clips.source_image())]
    cols, rows = -(-width // 1920), -(-height // 1080)
    canvas = np.zeros((rows * 1080, cols * 1920, 3), np.uint8)
    for i in range(rows * cols):
        im = images[i % len(images)]
        y, x = divmod(i, cols)
        top = (im.shape[0] - 1080) // 2
        canvas[y * 1080 : (y + 1) * 1080, x * 1920 : (x + 1) * 1920] = im[top : top + 1080, :1920]
    return canvas


def stream_clip(height: int, seconds: float = 10.0, fps: int = 25, gop: int = 25, still: bool = False) -> Path:
    """A cached H.264 clip (PyAV libx264, GOP `gop`, no B-frames) of a slowly panning photo mosaic;
    `still`: a fixed camera instead (the few-pixel drift of tests.support.clips, no scene change)."""
    from tests.support import clips

    width = height * 16 // 9
    kind, margin, pan = ("still", (64, 16), (32, 8)) if still else ("pan", (256, 64), (240, 40))
    out = CLIPS / f"{kind}_{height}p{fps}_gop{gop}_{seconds:g}s.mp4"
    if out.is_file():
        return out
    image = mosaic(width + margin[0], height + margin[1])
    return clips.make_clip(out, image, [clips.Segment("sharp", seconds)], size=(width, height), fps=fps, gop=gop,
                           crf=23, preset="veryfast", pan_px=pan)


def focus_clip(sharp: float, blur: float, sharp2: float, sigma_1080: float = 4.0, height: int = 720) -> Path:
    """sharp → defocused (hard cut, no ramp) → sharp, GOP 1 s; switch times are exactly `sharp`, `sharp+blur`."""
    from tests.support import clips

    width = height * 16 // 9
    out = CLIPS / f"focus_{height}p_{sharp:g}_{blur:g}_{sharp2:g}_s{sigma_1080:g}.mp4"
    if out.is_file():
        return out
    image = clips.load_image(clips.source_image())
    segments = [clips.Segment("sharp", sharp), clips.Segment("blur", blur, sigma_1080=sigma_1080, ramp_s=0),
                clips.Segment("sharp", sharp2)]
    return clips.make_clip(out, image, segments, size=(width, height), fps=25, gop=25, crf=21, preset="veryfast")


# --------------------------------------------------------------------------- services


@contextmanager
def rtsp_server(mounts: dict[str, Path], workdir: Path) -> Iterator[Any]:
    from tests.support.rtsp import RtspServer, rtsp_server_problem

    problem = rtsp_server_problem()
    if problem:
        raise RuntimeError(f"RTSP test server unavailable: {problem}")
    server = RtspServer(mounts, workdir).start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def broker(workdir: Path) -> Iterator[Any]:
    from tests.support.mqtt import Mosquitto

    b = Mosquitto(workdir).start()
    try:
        yield b
    finally:
        b.stop()


def focus_clip_labels(clip: Path, sharp: float, blur: float, sharp2: float) -> Path:
    """`start,end,label` ranges for a `focus_clip` (hard cuts: every frame is labelled)."""
    out = clip.with_suffix(".labels.csv")
    out.write_text(f"# start_s,end_s,label for {clip.name}\n0,{sharp:g},sharp\n{sharp:g},{sharp + blur:g},blurry\n"
                   f"{sharp + blur:g},{sharp + blur + sharp2:g},sharp\n")
    return out
