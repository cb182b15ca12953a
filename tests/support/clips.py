"""Test and demo clips: H.264 mp4 files made from one sharp photograph.

A clip is a crop of a sharp, detailed photo as a fixed camera sees it (a slow drift of a few
pixels, so consecutive frames are never identical), cut into segments:

* ``sharp``     -- the photo as is (pixel-exact crops, so every frame is in focus);
* ``blur``      -- defocus: a full Gaussian (radius ``ceil(3 sigma)``, OpenCV's rule),
                   ``sigma`` given at the 1920 px wide scale (as the thesis' classes) and
                   scaled to the clip width, with short linear ramps in and out;
* ``ir``        -- an IR-like night switch: grayscale, lower contrast, still in focus;
* ``dark``      -- a brightness drop (lights off / cloud), still in focus;
* ``night``     -- IR night mode at low exposure: grayscale, ``level`` x brightness,
                   Gaussian sensor noise (``noise``, new every frame); ``defocus`` > 0
                   (sigma at 1080p scale) defocuses it as well (no ramp);
* ``wall``      -- no photo: a plain painted wall (:func:`plain_wall`: a gentle light
                   gradient, vignetting, a faint blotch; contrast but no detail) with
                   Gaussian sensor noise (``noise``, new every frame);
* ``nuisance``  -- a picture change that is NOT focus loss: ``models.synth.nuisances.apply``
                   of ``nuisance`` (a name, or a tuple of names applied in order) on the
                   look of kind ``over`` (default ``sharp``; ``night``, ``ir``, ``dark``,
                   ``blur`` take their usual fields), at ``strength`` (None: drawn per
                   frame; a tuple: one per name), ramped linearly to ``strength_to`` over
                   the segment when given.
                   Each frame gets a fresh generator ``default_rng((seed, frame index))``
                   (deterministic); ``hold=True`` reuses the segment's first draw for every
                   frame (one truck, one PTZ preset held, rather than a new one per frame);
* ``covered``   -- a lens cap / a hand over the lens: a nearly uniform dark frame (mean luma
                   ``cover_luma``, a faint vignette) with Gaussian sensor noise
                   (``cover_noise``, new every frame); luma std ~2.5, under
                   quality.MIN_CONTRAST, also after H.264.

Encoding: PyAV's bundled libx264, yuv420p, no B-frames, fixed GOP (every
``gop`` frames an IDR, no scene-cut keyframes), so ``keyframes_only`` works and the
RTSP test server can stream the file without re-encoding.  The drift goes there and
back, so a looping clip has no jump at the seam.

Source photo: ``life_by_Aitzol_Berasategi.jpg`` (CC-BY-4.0, Debian package
``lomiri-wallpapers-16.04``), see :func:`source_image`.

CLI (run with the venv's python from the repository root)::

    python -m tests.support.clips demo demo/clip_focus_loss.mp4
    python -m tests.support.clips focus-loss /tmp/fl.mp4 --sharp 6 --blur 8 --sharp2 8
    python -m tests.support.clips transient /tmp/tr.mp4 --kind ir
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[2]
DEMO_CLIP = REPO_ROOT / "demo" / "clip_focus_loss.mp4"

PHOTO_NAME = "life_by_Aitzol_Berasategi.jpg"
PHOTO_PACKAGE = "lomiri-wallpapers-16.04"
PHOTO_PATH_IN_PACKAGE = "usr/share/backgrounds/" + PHOTO_NAME
PHOTO_ATTRIBUTION = '"life" by Aitzol Berasategi, 2018, CC-BY-4.0 (Debian package lomiri-wallpapers-16.04)'


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "focusguard-tests"


# --------------------------------------------------------------------------- source


def source_image(cache_dir: Path | None = None, fallback: bool = True) -> Path:
    """Path of the sharp source photo (1920 px wide JPEG), obtaining it if needed.

    Order: ``$FOCUSGUARD_TEST_PHOTO``; the cache (``~/.cache/focusguard-tests``);
    ``apt-get download lomiri-wallpapers-16.04`` (16 MB, Debian 12, needs apt lists)
    and extract the photo, scaled to 1920 px wide like ``get_debian_photos.sh``.
    If all that fails and ``fallback``: the first frame of the committed demo clip
    (1280x720, same photo, H.264-compressed), with a warning on stderr.
    """
    try:
        return _photo(cache_dir)
    except RuntimeError as err:
        if not fallback or not DEMO_CLIP.is_file():
            raise
        cache = cache_dir or default_cache_dir()
        frame = cache / "demo_clip_frame0.png"
        if not frame.is_file():
            import av

            cache.mkdir(parents=True, exist_ok=True)
            with av.open(str(DEMO_CLIP)) as c:
                first = next(c.decode(video=0)).to_ndarray(format="bgr24")
            import cv2

            cv2.imwrite(str(frame), first)
        print(f"clips: {err}; using the demo clip's first frame instead", file=sys.stderr)
        return frame


def _photo(cache_dir: Path | None) -> Path:
    env = os.environ.get("FOCUSGUARD_TEST_PHOTO")
    if env:
        p = Path(env)
        if not p.is_file():
            raise RuntimeError(f"FOCUSGUARD_TEST_PHOTO={env} does not exist")
        return p
    cache = cache_dir or default_cache_dir()
    cached = cache / PHOTO_NAME
    if cached.is_file():
        return cached
    cache.mkdir(parents=True, exist_ok=True)
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        raise RuntimeError(f"no {PHOTO_NAME}: set FOCUSGUARD_TEST_PHOTO (apt-get not available)")
    with tempfile.TemporaryDirectory(prefix="fg-photo-") as tmp:
        # apt-get download as root warns about the _apt sandbox: harmless; make the dir
        # world-readable so the sandboxed download works where it can.
        os.chmod(tmp, 0o755)
        r = subprocess.run(
            ["apt-get", "download", "-qq", PHOTO_PACKAGE],
            cwd=tmp,
            capture_output=True,
            text=True,
            check=False,
        )
        debs = list(Path(tmp).glob("*.deb"))
        if r.returncode != 0 or not debs:
            raise RuntimeError(
                f"apt-get download {PHOTO_PACKAGE} failed ({r.stderr.strip()[-300:]}); "
                "run apt-get update, or set FOCUSGUARD_TEST_PHOTO"
            )
        x = Path(tmp) / "x"
        subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(x)], check=True)
        src = x / PHOTO_PATH_IN_PACKAGE
        if not src.is_file():
            raise RuntimeError(f"{PHOTO_PATH_IN_PACKAGE} not in {debs[0].name}")
        import cv2

        im = cv2.imread(str(src), cv2.IMREAD_COLOR)
        if im is None:
            raise RuntimeError(f"cannot decode {src}")
        s = min(1.0, 1920 / im.shape[1])
        if s < 1:
            im = cv2.resize(im, None, fx=s, fy=s, interpolation=cv2.INTER_AREA)
        part = cached.with_suffix(".part.jpg")
        cv2.imwrite(str(part), im, [cv2.IMWRITE_JPEG_QUALITY, 92])
        part.replace(cached)
    return cached


def load_image(path: Path | str) -> np.ndarray:
    import cv2

    im = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if im is None:
        raise RuntimeError(f"cannot read image {path}")
    return im


# --------------------------------------------------------------------------- clips


KINDS = ("sharp", "blur", "ir", "dark", "night", "wall", "nuisance", "covered")
NUISANCE_OVER = ("sharp", "blur", "ir", "dark", "night")  # looks a nuisance can be applied on


@dataclass(frozen=True)
class Segment:
    """One stretch of a clip. ``kind``: sharp | blur | ir | dark | night | wall | nuisance | covered."""

    kind: str
    seconds: float
    sigma_1080: float = 7.0  # blur: Gaussian sigma at 1920 px wide scale
    ramp_s: float = 0.6  # blur: linear ramp of sigma at both ends
    level: float = 0.35  # dark, night: brightness factor; ir: unused
    noise: float = 4.0  # night, wall: sensor noise sigma (0-255 scale)
    defocus: float = 0.0  # night: Gaussian sigma at 1920 px wide scale (0: in focus)
    nuisance: str | tuple[str, ...] = ""  # nuisance: models.synth.nuisances name(s), applied in order
    # nuisance: severity in [0, 1] (None: drawn from the frame's rng), or one per name in `nuisance`
    strength: float | None | tuple[float | None, ...] = 0.5
    strength_to: float | tuple[float, ...] | None = None  # nuisance: ramp linearly to this over the segment
    over: str = "sharp"  # nuisance: the look it is applied on (one of NUISANCE_OVER)
    hold: bool = False  # nuisance: the same draw for every frame of the segment
    seed: int = 0  # nuisance: seeds default_rng((seed, frame index))
    cover_luma: float = 14.0  # covered: mean luma (0-255)
    cover_noise: float = 2.0  # covered: sensor noise sigma (0-255 scale)

    @property
    def nuisances(self) -> tuple[str, ...]:
        return (self.nuisance,) if isinstance(self.nuisance, str) else tuple(self.nuisance)

    def strengths(self, j: int, n: int) -> tuple[float | None, ...]:
        """Each nuisance's strength at frame j of n (a linear ramp to `strength_to` when given)."""
        k = len(self.nuisances)
        start = self.strength if isinstance(self.strength, tuple) else (self.strength,) * k
        end = self.strength_to if isinstance(self.strength_to, tuple) else (self.strength_to,) * k
        if len(start) != k or len(end) != k:
            raise ValueError(f"segment {self.nuisance!r}: want one strength (and strength_to) per nuisance")
        u = j / (n - 1) if n > 1 else 1.0
        return tuple(a if a is None or b is None else a + (b - a) * u for a, b in zip(start, end, strict=True))


def _sigma_at(seg: Segment, t: float) -> float:
    """Sigma (1080p scale) at time ``t`` seconds into a blur segment."""
    if seg.ramp_s <= 0:
        return seg.sigma_1080
    k = min(1.0, t / seg.ramp_s, max(0.0, seg.seconds - t) / seg.ramp_s)
    return seg.sigma_1080 * k


def _ir_like(img: np.ndarray) -> np.ndarray:
    import cv2

    g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32)
    g = 40.0 + 0.7 * g  # IR night mode: gray, washed out, a little brighter in shadows
    g = np.clip(g, 0, 255).astype(np.uint8)
    return cv2.cvtColor(g, cv2.COLOR_GRAY2BGR)


def _night(img: np.ndarray, seg: Segment, index: int, width: int) -> np.ndarray:
    import cv2

    if seg.defocus > 0:
        sigma = seg.defocus * width / 1920.0
        img = cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, sigmaY=sigma)
    g = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY).astype(np.float32) * seg.level + 8.0
    g += np.random.default_rng(index).normal(0.0, seg.noise, g.shape).astype(np.float32)
    return cv2.cvtColor(np.clip(g, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)


def plain_wall(size: tuple[int, int] = (1280, 720)) -> np.ndarray:
    """A plain off-white wall, BGR float32 (no noise): light from one side, vignetting and
    a faint large blotch.  Luma std ~7.5 over the frame (above quality.MIN_CONTRAST), at
    most ~4 in any 4x4 tile (below TEXTURE_STD): "too little detail", also after H.264."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    u, v = x / w - 0.5, y / h - 0.5
    g = 150.0 + 20.0 * u + 8.0 * v - 26.0 * (u * u + v * v)
    g += 5.0 * np.exp(-(((u - 0.2) / 0.18) ** 2 + ((v + 0.1) / 0.25) ** 2))
    return np.stack([g * 0.93, g * 0.98, g * 1.02], axis=-1)  # warm white paint


def _wall(base: np.ndarray, seg: Segment, index: int) -> np.ndarray:
    noise = np.random.default_rng(index).normal(0.0, seg.noise, base.shape[:2] + (1,)).astype(np.float32)
    return np.clip(base + noise + 0.5, 0, 255).astype(np.uint8)


def _covered(size: tuple[int, int], seg: Segment, index: int) -> np.ndarray:
    """A lens cap or a hand: nearly uniform dark, a faint vignette (the little light that
    leaks in at the rim), sensor noise new every frame; gray (B = G = R)."""
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    u, v = x / w - 0.5, y / h - 0.5
    g = seg.cover_luma + 3.0 * (u * u + v * v)  # +-1.5 levels: well under MIN_CONTRAST
    g += np.random.default_rng(index).normal(0.0, seg.cover_noise, g.shape).astype(np.float32)
    g8 = np.clip(g + 0.5, 0, 255).astype(np.uint8)
    return np.repeat(g8[..., None], 3, axis=2)


def _nuisance(frame: np.ndarray, seg: Segment, index: int, j: int, n: int, fps: int, width: int) -> np.ndarray:
    """Segment kind ``nuisance``: the ``over`` look, then each nuisance in turn."""
    from models.synth import nuisances

    base = Segment(seg.over, seg.seconds, sigma_1080=seg.sigma_1080, ramp_s=seg.ramp_s, level=seg.level,
                   noise=seg.noise, defocus=seg.defocus)  # fmt: skip
    frame = _look(frame, base, index, j, fps, width, None, (0, 0))
    # A fresh, deterministic draw per frame; hold: the segment's first frame's draw every time.
    rng = np.random.default_rng((seg.seed, index - j if seg.hold else index))
    for name, strength in zip(seg.nuisances, seg.strengths(j, n), strict=True):
        frame = nuisances.apply(name, np.ascontiguousarray(frame), rng, strength)
    return frame


def _look(
    frame: np.ndarray,
    seg: Segment,
    i: int,
    j: int,
    fps: int,
    w: int,
    wall: np.ndarray | None,
    size: tuple[int, int],
    n: int = 1,
) -> np.ndarray:
    """Frame ``j`` of segment ``seg`` (frame ``i`` of the clip) from the sharp crop ``frame``."""
    import cv2

    if seg.kind == "blur":
        sigma = _sigma_at(seg, j / fps) * w / 1920.0
        if sigma > 0.05:
            frame = cv2.GaussianBlur(frame, (0, 0), sigmaX=sigma, sigmaY=sigma)
    elif seg.kind == "ir":
        frame = _ir_like(frame)
    elif seg.kind == "dark":
        frame = cv2.convertScaleAbs(frame, alpha=seg.level, beta=0)
    elif seg.kind == "night":
        frame = _night(frame, seg, i, w)
    elif seg.kind == "wall" and wall is not None:
        frame = _wall(wall, seg, i)
    elif seg.kind == "nuisance":
        frame = _nuisance(frame, seg, i, j, n, fps, w)
    elif seg.kind == "covered":
        frame = _covered(size, seg, i)
    elif seg.kind != "sharp":
        raise ValueError(f"unknown segment kind {seg.kind!r}")
    return frame


def _check_segment(seg: Segment) -> None:
    if seg.kind not in KINDS:
        raise ValueError(f"unknown segment kind {seg.kind!r}")
    if seg.kind != "nuisance":
        return
    from models.synth import nuisances

    if not seg.nuisances or any(name not in nuisances.NUISANCES for name in seg.nuisances):
        raise ValueError(f"segment nuisance {seg.nuisance!r}: want names from {', '.join(nuisances.NUISANCES)}")
    if seg.over not in NUISANCE_OVER:
        raise ValueError(f"segment over={seg.over!r}: want one of {', '.join(NUISANCE_OVER)}")
    for value in seg.strengths(0, 2) + seg.strengths(1, 2):
        if value is not None and not 0.0 <= value <= 1.0:
            raise ValueError(f"nuisance strength must be in [0, 1], got {value!r}")


def _crop_origin(i: int, n: int, max_x: int, max_y: int) -> tuple[int, int]:
    """Integer pan position for frame i of n: there and back (seamless loop)."""
    if n <= 1:
        return 0, 0
    u = i / n  # 0..1
    p = 1.0 - abs(1.0 - 2.0 * u)  # 0 -> 1 -> 0
    p = 0.5 - 0.5 * math.cos(math.pi * p)  # ease in/out
    return round(p * max_x), round(p * max_y)


def make_clip(
    out: Path | str,
    image: np.ndarray,
    segments: Sequence[Segment],
    size: tuple[int, int] = (1280, 720),
    fps: int = 25,
    gop: int = 25,
    crf: int = 21,
    preset: str = "veryfast",
    pan_px: tuple[int, int] = (32, 8),
) -> Path:
    """Encode ``segments`` of a drifting crop of ``image`` to an H.264 mp4 at ``out``.

    The crop window keeps the photo's pixel scale when it fits (a 1280x720 window on a
    1920 px wide photo), else the photo is scaled down to cover ``size`` first.
    ``pan_px`` = (x, y) pixels travelled (there and back) over the whole clip, at most the
    free margin.  The default (32, 8) is a fixed camera: a slow drift of a few pixels, so
    consecutive frames are never identical.  Keep it small: the fusion detector compares each
    frame's coarse structure with its in-focus baseline (shift-tolerant within ~5 % of the
    width), so a view that moves further (a 100+ px pan) reads as a scene change (no focus
    vote, possibly tamper_detected); real fixed cameras do not pan.
    """
    import av
    import cv2

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    w, h = size
    ih, iw = image.shape[:2]
    if iw < w or ih < h:
        raise ValueError(f"image {iw}x{ih} smaller than clip {w}x{h}")
    # Keep ~1/3 of the width as pan room; scale the photo down (INTER_AREA keeps it
    # sharp) when it is much larger than needed.
    scale = min(1.0, max(w / iw, h / ih) * 1.5)
    if scale < 1.0:
        image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        ih, iw = image.shape[:2]
    max_x = min(pan_px[0], iw - w)
    max_y = min(pan_px[1], ih - h)
    x0 = (iw - w - max_x) // 2
    y0 = (ih - h - max_y) // 2

    for seg in segments:
        _check_segment(seg)  # before the encoder starts: no half-written clip for a typo
    counts = [round(s.seconds * fps) for s in segments]
    n_total = sum(counts)
    tmp = out.with_name(out.name + ".part.mp4")
    container = av.open(str(tmp), mode="w", format="mp4")
    try:
        stream = container.add_stream("libx264", rate=fps)
        stream.width = w
        stream.height = h
        stream.pix_fmt = "yuv420p"
        stream.time_base = Fraction(1, fps)
        stream.codec_context.gop_size = gop
        stream.codec_context.max_b_frames = 0
        stream.options = {
            "crf": str(crf),
            "preset": preset,
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0:open-gop=0",
        }
        i = 0
        wall = plain_wall(size) if any(s.kind == "wall" for s in segments) else None
        for seg, n in zip(segments, counts, strict=True):
            for j in range(n):
                dx, dy = _crop_origin(i, n_total, max_x, max_y)
                frame = image[y0 + dy : y0 + dy + h, x0 + dx : x0 + dx + w]
                frame = _look(frame, seg, i, j, fps, w, wall, size, n)
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="bgr24")
                vf.pts = i
                vf.time_base = Fraction(1, fps)
                for pkt in stream.encode(vf):
                    container.mux(pkt)
                i += 1
        for pkt in stream.encode(None):
            container.mux(pkt)
    finally:
        container.close()
    tmp.replace(out)
    return out


def focus_loss_segments(
    sharp: float = 12, blur: float = 14, sharp2: float = 14, sigma_1080: float = 7.0
) -> list[Segment]:
    return [
        Segment("sharp", sharp),
        Segment("blur", blur, sigma_1080=sigma_1080),
        Segment("sharp", sharp2),
    ]


def transient_segments(before: float = 6, transient: float = 2, after: float = 8, kind: str = "ir") -> list[Segment]:
    return [Segment("sharp", before), Segment(kind, transient), Segment("sharp", after)]


def make_demo_clip(out: Path | str = DEMO_CLIP, photo: Path | str | None = None) -> Path:
    """The committed demo clip: 1280x720, 25 fps, 12 s sharp, 14 s defocused (sigma 7 at
    1080p scale), 14 s sharp; a fixed camera: a slow drift of a few pixels (32 x 8 px there
    and back), so consecutive frames are never identical.  Must stay <= 3 MB: this
    photo's keyframes cost ~270 KB each, so the GOP is 20 s (the daemon then decodes
    every frame: cheap at 720p); test clips use GOP 25 to exercise keyframes-only.
    Compression at this CRF leaves the 448x448 view's Laplacian energy within 1% of the
    uncompressed frame (b_0.5 is -3%)."""
    image = load_image(photo or source_image())
    return make_clip(
        out,
        image,
        focus_loss_segments(12, 14, 14),
        size=(1280, 720),
        fps=25,
        gop=500,
        crf=26,
        preset="slow",
        pan_px=(32, 8),
    )


def moving_bar_clip(path: Path, frames: int, gop: int, fps: int = 10) -> Path:
    """A tiny 160x120 H.264 clip (a bright bar moving over grey) with a keyframe every `gop` frames,
    for grabber unit tests."""
    import av  # PyAV's bundled libx264

    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.options = {"g": str(gop), "keyint_min": str(gop), "sc_threshold": "0", "bf": "0"}
        for i in range(frames):
            image = np.full((120, 160, 3), 40, np.uint8)
            image[:, (i * 6) % 160] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


def probe(path: Path | str) -> dict[str, Any]:
    """Facts about a clip: codec, size, fps, frame count, keyframe indices, file size."""
    import av

    with av.open(str(path)) as c:
        s = c.streams.video[0]
        keys = []
        n = 0
        for pkt in c.demux(s):
            if pkt.size == 0:
                continue
            if pkt.is_keyframe:
                keys.append(n)
            n += 1
        return {
            "codec": s.codec_context.name,
            "width": s.codec_context.width,
            "height": s.codec_context.height,
            "fps": float(s.average_rate or 0),
            "frames": n,
            "keyframes": keys,
            "bytes": Path(path).stat().st_size,
        }


# --------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m tests.support.clips", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = ap.add_subparsers(dest="cmd", required=True)
    d = sub.add_parser("demo", help="(re)make the committed demo clip")
    d.add_argument("out", nargs="?", default=str(DEMO_CLIP))
    fl = sub.add_parser("focus-loss", help="sharp -> defocused -> sharp")
    fl.add_argument("out")
    fl.add_argument("--sharp", type=float, default=6)
    fl.add_argument("--blur", type=float, default=8)
    fl.add_argument("--sharp2", type=float, default=8)
    fl.add_argument("--sigma", type=float, default=7.0)
    tr = sub.add_parser("transient", help="sharp with a short in-focus transient")
    tr.add_argument("out")
    tr.add_argument("--kind", choices=["ir", "dark"], default="ir")
    tr.add_argument("--before", type=float, default=6)
    tr.add_argument("--transient", type=float, default=2)
    tr.add_argument("--after", type=float, default=8)
    for p in (d, fl, tr):
        p.add_argument("--photo", help=f"source photo (default: {PHOTO_NAME}, obtained via apt)")
    for p in (fl, tr):
        p.add_argument("--size", default="1280x720")
        p.add_argument("--fps", type=int, default=25)
        p.add_argument("--gop", type=int, default=25)
    a = ap.parse_args(argv)
    if a.cmd == "demo":
        out = make_demo_clip(a.out, a.photo)
    else:
        w, h = (int(v) for v in a.size.split("x"))
        image = load_image(a.photo or source_image())
        if a.cmd == "focus-loss":
            segs = focus_loss_segments(a.sharp, a.blur, a.sharp2, a.sigma)
        else:
            segs = transient_segments(a.before, a.transient, a.after, a.kind)
        out = make_clip(a.out, image, segs, size=(w, h), fps=a.fps, gop=a.gop)
    info = probe(out)
    print(
        f"wrote {out}: {info['width']}x{info['height']} {info['frames']} frames "
        f"@{info['fps']:g} fps, {len(info['keyframes'])} keyframes, {info['bytes']} bytes"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
