"""Nuisances: picture changes on a sharp BGR frame that must NOT be taken for a loss of focus.

Used (a) offline to build training data for the focus detector (the "sharp" class must include
them) and (b) by the false-alarm tests. Each one changes the picture while the lens stays in
focus, so none resamples or low-passes the whole frame, except where physics blurs a *part*
(a person right in front of the lens is itself out of focus, a truck side is smooth), where the
nuisance is a codec effect (compression) or a motion effect (vibration).

Every function takes ``(image, rng, strength)``: `image` a BGR uint8 frame (any size, meant for
352x288 to 1920x1080), `strength` in [0, 1] choosing the severity within the ranges below
(0 = mild end, 1 = severe end; None: drawn from `rng`). Secondary parameters (positions, angles,
colours, direction of a change) are drawn from `rng`, so the same seed gives the same frame.
Each returns a new uint8 BGR array of the input's shape. W, H: frame width and height.

==============  ==========================================================================
nuisance        parameters (strength 0 -> 1; "rng": drawn, whatever the strength)
==============  ==========================================================================
ir_switch       monochrome w_R R + w_G G + w_B B (w_R 0.5-0.65, w_G 0.25-0.32, rest B; IR makes
                vegetation bright), level 0.9 -> 0.3 (x0.95-1.05 rng) x brightness, offset 4-20,
                Gaussian noise sigma 2 -> 6 (new per call); output B = G = R
lights          multiplicative illumination field, one of: 1-2 lamp pools switched on (peak gain
                1.3 -> 2.5), switched off (gain in the pools 0.75 -> 0.35), or a left-right
                ramp (far side 0.75 -> 0.35 or 1.3 -> 2.5); pools are Gaussians of sigma
                15-35 % of max(W, H); field clipped to [0.35, 2.5], result clipped at 255
exposure        255 gain (I/255)^gamma: gain 0.85 -> 0.45 or 1.15 -> 1.8, gamma 1.1 -> 1.4 or
                0.9 -> 0.7 (directions rng)
gain_noise      signal x gain 0.6 -> 0.3, sensor noise sigma 3 -> 10, quantised, then x 1/gain:
                same brightness, noise amplified to sigma 5 -> 33
sensor_noise    additive Gaussian noise sigma 2 -> 8 per pixel, 80 % of the variance shared by
                the three channels (luma-like), 20 % per channel
fog             I (1 - a) + A a, airlight A 170-235 (slightly bluish), a = a_max (1 - k y / H):
                a_max 0.2 -> 0.75 at the top (far away), slope k 0.3-0.9; no blur
rain            streaks 1-2 px wide (75 % 1 px), length 1-6 % of H, one angle within +-25 deg
                of vertical, density 0.0003 -> 0.0025 per pixel, grey 200-245, anti-aliased
                cv2.line on a mask blended at opacity 0.15 -> 0.45 (x0.6-1 per streak)
snow            flakes radius 1-4 px (55/27/13/5 %), density 0.0004 -> 0.003 per pixel, opacity
                0.5-1 each; 1 -> 4 (+0-1) large near flakes of radius 0.6-1.5 % of W, blurred
                (sigma 0.4-0.8 r, on their own layer only); white 225-250
headlights      frame darkened to 0.45 -> 0.2 of its brightness, then 1-3 saturated discs
                (radius 0.5 -> 2 % of W, x0.85-1.15) with a Gaussian glare halo (radius
                5 -> 15 % of W, sigma = radius / 2, peak 110 -> 220) and a bright core, added
                and clipped
truck           a vehicle side covering 30 -> 45 % of the frame: rectangle from the left or
                right edge, bottom-aligned, height 40-70 % of H; smooth panel colour with a
                vertical brightness gradient, 1-3 seam lines, 1-2 rows of dark text-like
                blocks, a dark skirt, a sharp own edge, noise sigma 1.5; rest untouched
person_near     head-and-shoulders silhouette (ellipse + rounded rectangle), dark or coloured,
                from the bottom, left or right edge, footprint (opacity > 3 %) 15 -> 40 % of the
                frame, itself out of focus (mask and colour blurred with sigma 2-5 % of W); the
                rest untouched
compression     JPEG re-encode (cv2.imencode / imdecode) at quality 40 -> 12
ptz_move        another preset at the same scale without resampling: mirrored horizontally and
                rolled (np.roll) by 20 -> 45 % of W and 0 -> 20 % of H (+-2 % rng, signs rng)
vibration       integer shift of 1 -> 4 px (edge replicated) in a random direction plus a
                linear motion blur of length 1.0 -> 2.5 px at a random angle (normalised line
                kernel, cv2.filter2D)
==============  ==========================================================================
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np

NUISANCES: tuple[str, ...] = (
    "ir_switch",
    "lights",
    "exposure",
    "gain_noise",
    "sensor_noise",
    "fog",
    "rain",
    "snow",
    "headlights",
    "truck",
    "person_near",
    "compression",
    "ptz_move",
    "vibration",
)

Nuisance = Callable[[np.ndarray, np.random.Generator, float | None], np.ndarray]

# Sub-pixel drawing: OpenCV takes fixed-point coordinates with this many fractional bits.
_SHIFT = 4
_ONE = 1 << _SHIFT


# --- helpers -----------------------------------------------------------------------------------


def _strength(rng: np.random.Generator, strength: float | None) -> float:
    """The severity in [0, 1]; drawn from `rng` when None (so a seed fixes it too)."""
    if strength is None:
        return float(rng.uniform(0.0, 1.0))
    value = float(strength)
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise ValueError(f"strength must be in [0, 1], got {strength!r}")
    return value


def _lerp(lo: float, hi: float, s: float) -> float:
    return lo + (hi - lo) * s


def _check(image: np.ndarray) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        got = getattr(image, "shape", None), getattr(image, "dtype", type(image))
        raise ValueError(f"expected a BGR uint8 image of shape (H, W, 3), got {got}")
    return image


def _to_u8(values: np.ndarray) -> np.ndarray:
    # Round, not truncate: truncation would darken every nuisance by half a level on average.
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _luma(image: np.ndarray) -> np.ndarray:
    f = image.astype(np.float32)
    return 0.114 * f[..., 0] + 0.587 * f[..., 1] + 0.299 * f[..., 2]


def _scene_level(image: np.ndarray) -> float:
    """How bright the scene is (1 = mid-grey), so objects put into it are lit like it."""
    return float(np.clip(_luma(image).mean() / 128.0, 0.3, 1.2))


def _noise(h: int, w: int, sigma: float, rng: np.random.Generator, shared: float = 0.8) -> np.ndarray:
    """Gaussian noise of std `sigma` per channel; `shared` of the variance common to B, G, R.

    Demosaicing and the ISP's colour matrix correlate sensor noise across channels, so real
    noise is mostly luma noise with some chroma."""
    common = rng.standard_normal((h, w, 1), dtype=np.float32) * np.float32(sigma * math.sqrt(shared))
    own = rng.standard_normal((h, w, 3), dtype=np.float32) * np.float32(sigma * math.sqrt(1.0 - shared))
    return common + own


def _gaussian_blob(h: int, w: int, cx: float, cy: float, sigma: float) -> np.ndarray:
    """exp(-d^2 / 2 sigma^2) around (cx, cy), built separably (cheap even at 1080p)."""
    gx = np.exp(-((np.arange(w, dtype=np.float32) - cx) ** 2) / np.float32(2.0 * sigma * sigma))
    gy = np.exp(-((np.arange(h, dtype=np.float32) - cy) ** 2) / np.float32(2.0 * sigma * sigma))
    return np.outer(gy, gx).astype(np.float32)


def _fixed(x: float, y: float) -> tuple[int, int]:
    return round(x * _ONE), round(y * _ONE)


# --- the nuisances -----------------------------------------------------------------------------


def ir_switch(image: np.ndarray, rng: np.random.Generator, strength: float | None = None) -> np.ndarray:
    """Day -> IR night: monochrome from an IR-like channel mix, dimmer, noisy; B = G = R."""
    _check(image)
    s = _strength(rng, strength)
    # Near-IR reflectance follows red more than green (foliage is bright in IR), unlike luma.
    w_r = rng.uniform(0.5, 0.65)
    w_g = rng.uniform(0.25, 0.32)
    w_b = 1.0 - w_r - w_g
    f = image.astype(np.float32)
    mono = w_b * f[..., 0] + w_g * f[..., 1] + w_r * f[..., 2]
    level = float(np.clip(_lerp(0.9, 0.3, s) * rng.uniform(0.95, 1.05), 0.3, 0.9))
    offset = rng.uniform(4.0, 20.0)  # IR illuminator stray light / black level lift
    sigma = _lerp(2.0, 6.0, s)
    gray = _to_u8(level * mono + offset + np.float32(sigma) * rng.standard_normal(mono.shape, dtype=np.float32))
    return np.repeat(gray[..., None], 3, axis=2)


def lights(image: np.ndarray, rng: np.random.Generator, strength: float | None = None) -> np.ndarray:
    """Lights switched on or off: a smooth multiplicative illumination field (pools or a ramp)."""
    _check(image)
    s = _strength(rng, strength)
    h, w = image.shape[:2]
    mode = int(rng.integers(3))  # 0: lamps on, 1: lamps off, 2: left-right ramp
    if mode < 2:
        pool = np.zeros((h, w), np.float32)
        for _ in range(int(rng.integers(1, 3))):
            cx, cy = rng.uniform(0.1, 0.9) * w, rng.uniform(0.1, 0.8) * h
            sigma = rng.uniform(0.15, 0.35) * max(h, w)
            pool = 1.0 - (1.0 - pool) * (1.0 - _gaussian_blob(h, w, cx, cy, sigma))  # union, stays <= 1
        if mode == 0:
            field = 1.0 + np.float32(_lerp(1.3, 2.5, s) - 1.0) * pool
        else:
            field = 1.0 - np.float32(1.0 - _lerp(0.75, 0.35, s)) * pool
    else:
        far = _lerp(0.75, 0.35, s) if rng.random() < 0.5 else _lerp(1.3, 2.5, s)
        t = np.linspace(0.0, 1.0, w, dtype=np.float32)
        if rng.random() < 0.5:
            t = t[::-1]
        t = t * t * (3.0 - 2.0 * t)  # smoothstep: light falls off gradually, no visible kink
        field = np.broadcast_to(1.0 + np.float32(far - 1.0) * t, (h, w))
    field = np.clip(field, 0.35, 2.5).astype(np.float32)
    return _to_u8(image.astype(np.float32) * field[..., None])


def exposure(image: np.ndarray, rng: np.random.Generator, strength: float | None = None) -> np.ndarray:
    """Global exposure and gamma change (auto-exposure step, ISP tone curve): a pure pixel map."""
    _check(image)
    s = _strength(rng, strength)
    gain = _lerp(0.85, 0.45, s) if rng.random() < 0.5 else _lerp(1.15, 1.8, s)
    gamma = _lerp(1.1, 1.4, s) if rng.random() < 0.5 else _lerp(0.9, 0.7, s)
    lut = _to_u8(255.0 * gain * (np.arange(256, dtype=np.float64) / 255.0) ** gamma)
    return cv2.LUT(image, lut)


def gain_noise(image: np.ndarray, rng: np.random.Generator, strength: float | None = None) -> np.ndarray:
    """A darker scene with the camera's gain up: the same brightness, much more (amplified) noise."""
    _check(image)
    s = _strength(rng, strength)
    h, w = image.shape[:2]
    gain = _lerp(0.6, 0.3, s)
    sigma = _lerp(3.0, 10.0, s)
    # Less light -> smaller signal; read/shot noise and the ADC's quantisation act on that dim
    # signal, then the digital gain (1 / gain) amplifies signal, noise and quantisation steps.
    raw = np.clip(np.rint(image.astype(np.float32) * np.float32(gain) + _noise(h, w, sigma, rng)), 0, 255)
    return _to_u8(raw / np.float32(gain))


def sensor_noise(image: np.ndarray, rng: np.random.Generator, strength: float | None = None) -> np.ndarray:
    """Additive Gaussian sensor noise, mostly luma-correlated across channels."""
    _check(image)
    s = _strength(rng, strength)
    h, w = image.shape[:2]
    return _to_u8(image.astype(np.float32) + _noise(h, w, _lerp(2.0, 8.0, s), rng))


def fog(image: np.ndarray, rng: np.random.Generator, strength: float | None = None) -> np.ndarray:
    """Haze: blend toward the airlight, more at the top of the frame (farther away); no blur."""
    _check(image)
    s = _strength(rng, strength)
    h = image.shape[0]
    a_max = _lerp(0.2, 0.75, s)
    slope = rng.uniform(0.3, 0.9)  # how much less haze at the bottom (near the camera)
    airlight = rng.uniform(170.0, 235.0) + np.array([3.0, 1.0, -2.0]) + rng.uniform(-3.0, 3.0, 3)
    a = (a_max * (1.0 - slope * np.linspace(0.0, 1.0, h))).astype(np.float32)[:, None, None]
    return _to_u8(image.astype(np.float32) * (1.0 - a) + airlight.astype(np.float32) * a)


def rain(image: np.ndarray, rng: np.random.Generator, strength: float | None = None) -> np.ndarray:
    """Rain: thin bright semi-transparent slanted streaks, one angle for the frame (the wind)."""
    _check(image)
    s = _strength(rng, strength)
    h, w = image.shape[:2]
    angle = math.radians(rng.uniform(-25.0, 25.0))
    count = round(h * w * _lerp(0.0003, 0.0025, s))
    lengths = rng.uniform(0.01, 0.06, count) * h
    x0 = rng.uniform(-0.1 * w, 1.1 * w, count)  # start beyond the edges: slanted streaks enter there
    y0 = rng.uniform(-0.06 * h, h, count)
    widths = np.where(rng.random(count) < 0.75, 1, 2)
    alphas = rng.uniform(0.6, 1.0, count)  # nearer / bigger drops are more opaque
    mask = np.zeros((h, w), np.uint8)
    dx, dy = math.sin(angle), math.cos(angle)
    for i in range(count):
        end = (x0[i] + dx * lengths[i], y0[i] + dy * lengths[i])
        cv2.line(mask, _fixed(x0[i], y0[i]), _fixed(*end), int(255 * alphas[i]), int(widths[i]),
                 cv2.LINE_AA, _SHIFT)
    opacity = _lerp(0.15, 0.45, s)
    colour = (rng.uniform(200.0, 245.0) + np.array([4.0, 2.0, 0.0])).astype(np.float32)  # lit by grey sky
    m = (mask.astype(np.float32) * np.float32(opacity / 255.0))[..., None]
    return _to_u8(image.astype(np.float32) * (1.0 - m) + colour * m)


def snow(image: np.ndarray, rng: np.random.Generator, strength: float | None = None) -> np.ndarray:
    """Snowfall: many small sharp flakes and a few large near ones, out of focus (only those)."""
    _check(image)
    s = _strength(rng, strength)
    h, w = image.shape[:2]
    count = round(h * w * _lerp(0.0004, 0.003, s))
    radii = rng.choice(np.array([1, 2, 3, 4]), size=count, p=[0.55, 0.27, 0.13, 0.05])
    xs, ys = rng.uniform(0, w, count), rng.uniform(0, h, count)
    opacities = rng.uniform(0.5, 1.0, count)
    small = np.zeros((h, w), np.uint8)
    for x, y, r, o in zip(xs, ys, radii, opacities, strict=True):
        cv2.circle(small, _fixed(x, y), int(r) * _ONE, int(255 * o), -1, cv2.LINE_AA, _SHIFT)
    alpha = small.astype(np.float32) / 255.0

    # Flakes right in front of the lens are far outside the depth of field: each is drawn and
    # blurred on its own patch (a layer of constant white, so blurring its alpha mask is
    # blurring the overlay), then composited; the scene behind stays sharp.
    big = np.zeros((h, w), np.float32)
    for _ in range(round(_lerp(1.0, 4.0, s)) + int(rng.integers(0, 2))):
        r = rng.uniform(0.006, 0.015) * w
        sigma = r * rng.uniform(0.4, 0.8)
        cx, cy = rng.uniform(0, w), rng.uniform(0, h)
        opacity = rng.uniform(0.5, 1.0)
        pad = math.ceil(r + 3.0 * sigma) + 2
        patch = np.zeros((2 * pad + 1, 2 * pad + 1), np.float32)
        fx, fy = cx - math.floor(cx), cy - math.floor(cy)
        cv2.circle(patch, _fixed(pad + fx, pad + fy), round(r * _ONE), float(opacity), -1, cv2.LINE_8, _SHIFT)
        patch = cv2.GaussianBlur(patch, (0, 0), sigma)
        top, left = math.floor(cy) - pad, math.floor(cx) - pad
        y1, y2 = max(top, 0), min(top + patch.shape[0], h)
        x1, x2 = max(left, 0), min(left + patch.shape[1], w)
        if y1 < y2 and x1 < x2:
            region = big[y1:y2, x1:x2]
            np.maximum(region, patch[y1 - top : y2 - top, x1 - left : x2 - left], out=region)
    alpha = (1.0 - (1.0 - alpha) * (1.0 - big))[..., None]
    colour = (rng.uniform(225.0, 250.0) + np.array([3.0, 1.0, 0.0])).astype(np.float32)
    return _to_u8(image.astype(np.float32) * (1.0 - alpha) + colour * alpha)


def headlights(image: np.ndarray, rng: np.random.Generator, strength: float | None = None) -> np.ndarray:
    """Night scene with oncoming headlights: dark frame, saturated discs, large glare halos."""
    _check(image)
    s = _strength(rng, strength)
    h, w = image.shape[:2]
    out = image.astype(np.float32) * np.float32(_lerp(0.45, 0.2, s))
    count = int(rng.integers(1, 4))
    r_disc = w * float(np.clip(_lerp(0.005, 0.02, s) * rng.uniform(0.85, 1.15), 0.005, 0.02))
    r_halo = w * float(np.clip(_lerp(0.05, 0.15, s) * rng.uniform(0.85, 1.15), 0.05, 0.15))
    # Two lights are a car's pair (same height, a few disc radii apart); a third is elsewhere.
    y = rng.uniform(0.45, 0.9) * h
    x = rng.uniform(0.1, 0.9) * w
    centres = [(x, y)]
    if count >= 2:
        centres.append((x + rng.choice([-1.0, 1.0]) * r_disc * rng.uniform(6.0, 12.0), y))
    if count == 3:
        centres.append((rng.uniform(0.05, 0.95) * w, rng.uniform(0.4, 0.9) * h))
    tint = np.array([0.85, 0.95, 1.0] if rng.random() < 0.6 else [1.0, 0.97, 0.9], np.float32)  # halogen / xenon
    peak = _lerp(110.0, 220.0, s)
    glare = np.zeros((h, w), np.float32)
    discs = np.zeros((h, w), np.uint8)
    for cx, cy in centres:
        # Veiling glare (lens and dome scatter): a wide halo plus a brighter core round the disc.
        glare += np.float32(peak) * _gaussian_blob(h, w, cx, cy, r_halo / 2.0)
        glare += np.float32(255.0) * _gaussian_blob(h, w, cx, cy, 2.0 * r_disc)
        cv2.circle(discs, _fixed(cx, cy), round(r_disc * _ONE), 255, -1, cv2.LINE_AA, _SHIFT)
    out = np.minimum(out + glare[..., None] * tint, 255.0)
    m = (discs.astype(np.float32) / 255.0)[..., None]
    return _to_u8(out * (1.0 - m) + 255.0 * m)  # the lamp itself saturates the sensor: pure white


_TRUCK_COLOURS = np.array(
    [[235, 235, 235], [190, 195, 200], [40, 40, 190], [150, 80, 30], [30, 190, 230], [60, 120, 40], [70, 70, 70]],
    np.float32,
)


def truck(image: np.ndarray, rng: np.random.Generator, strength: float | None = None) -> np.ndarray:
    """A large vehicle side entering from the left or right: smooth panel, seams, lettering."""
    _check(image)
    s = _strength(rng, strength)
    h, w = image.shape[:2]
    cover = _lerp(0.30, 0.45, s)
    height_frac = rng.uniform(max(0.40, cover / 0.95), 0.70)  # keeps the width <= 95 % of W
    th = max(1, round(height_frac * h))
    tw = max(1, min(w, round(cover * h * w / th)))
    from_left = rng.random() < 0.5
    level = _scene_level(image)  # a truck in a night scene is dark too

    colour = np.clip(_TRUCK_COLOURS[int(rng.integers(len(_TRUCK_COLOURS)))] + rng.uniform(-12, 12, 3), 0, 255)
    top, bottom = rng.uniform(1.0, 1.12), rng.uniform(0.75, 0.92)  # sky-lit top, shaded bottom
    shade = np.linspace(top, bottom, th, dtype=np.float32)[:, None, None]
    panel = np.broadcast_to(shade * (colour * level).astype(np.float32), (th, tw, 3)).copy()

    for _ in range(int(rng.integers(1, 4))):  # seams between the body panels
        sx = int(rng.integers(max(1, tw // 10), max(2, tw * 9 // 10)))
        panel[:, sx : sx + int(rng.integers(1, 3))] *= np.float32(rng.uniform(0.55, 0.8))

    ink = np.float32(rng.uniform(25.0, 60.0) * level)
    for _ in range(int(rng.integers(1, 3))):  # rows of lettering: dark blocks with gaps
        char_h = max(2, round(rng.uniform(0.05, 0.10) * th))
        char_w = max(1, round(char_h * rng.uniform(0.5, 0.8)))
        gap = max(1, round(char_w * rng.uniform(0.2, 0.5)))
        ty = int(rng.uniform(0.12, 0.6) * th)
        tx = int(rng.uniform(0.05, 0.4) * tw)
        for _ in range(int(rng.integers(3, 9))):
            if tx + char_w > tw:
                break
            panel[ty : ty + char_h, tx : tx + char_w] = ink
            tx += char_w + gap

    skirt = max(1, round(rng.uniform(0.05, 0.09) * th))  # under-run guard / chassis shadow
    panel[th - skirt :] = np.float32(rng.uniform(30.0, 55.0) * level)
    rim = slice(tw - 2, tw) if from_left else slice(0, 2)  # the body's rounded front corner
    panel[:, rim] *= np.float32(0.7)
    panel += _noise(th, tw, 1.5, rng)  # the camera's noise is on the truck too

    out = image.copy()
    x0 = 0 if from_left else w - tw
    out[h - th :, x0 : x0 + tw] = _to_u8(panel)  # hard rectangle: the truck's own edge is sharp
    return out


_JACKETS = np.array([[40, 40, 170], [140, 80, 30], [50, 110, 50], [40, 200, 220], [120, 150, 170]], np.float32)


def person_near(image: np.ndarray, rng: np.random.Generator, strength: float | None = None) -> np.ndarray:
    """A person right in front of the lens: a head-and-shoulders silhouette from an edge, itself
    far out of focus (only the silhouette is blurred); the rest of the frame untouched."""
    _check(image)
    s = _strength(rng, strength)
    h, w = image.shape[:2]
    cover = _lerp(0.15, 0.40, s)
    edge = int(rng.integers(3))  # 0: from the bottom, 1: from the left, 2: from the right
    cx_frac = (rng.uniform(0.25, 0.75), rng.uniform(-0.15, 0.1), rng.uniform(0.9, 1.15))[edge]
    shoulder_h = rng.uniform(0.35, 0.55)  # visible shoulder height / shoulder width
    head_w = rng.uniform(0.38, 0.48)  # head width / shoulder width
    head_aspect = rng.uniform(1.15, 1.35)
    head_dx = rng.uniform(-0.08, 0.08)
    tilt = rng.uniform(-12.0, 12.0)
    sigma_frac = rng.uniform(0.02, 0.05)
    level = _scene_level(image)
    if rng.random() < 0.5:
        body_colour = np.full(3, rng.uniform(20.0, 60.0), np.float32)  # dark clothing
    else:
        body_colour = np.clip(_JACKETS[int(rng.integers(len(_JACKETS)))] + rng.uniform(-15, 15, 3), 0, 255)
    if rng.random() < 0.6:
        head_colour = np.array([95.0, 125.0, 175.0]) * rng.uniform(0.55, 1.1)  # skin
    else:
        head_colour = np.full(3, rng.uniform(25.0, 55.0))  # hair or hood, seen from behind
    body_colour = (body_colour * level).astype(np.float32)
    head_colour = (head_colour * level).astype(np.float32)

    # The blurred silhouette is a smooth field: build it on a grid about 192 px wide and
    # upsample; that is exact enough at blur sigmas >= 2 % of W and keeps 1080p cheap.
    factor = max(1, w // 192)
    lw, lh = max(8, round(w / factor)), max(8, round(h / factor))
    sigma = sigma_frac * lw
    eps = 0.02  # opacity below which the defocused edge is cut (tapered, so without a step)
    visible = 0.03  # the footprint counts where the opacity exceeds this (just inside the cut)

    def draw(scale: float) -> tuple[np.ndarray, np.ndarray]:
        sw = scale * lw
        cx = cx_frac * lw
        sh = shoulder_h * sw
        hw = head_w * sw
        hh = hw * head_aspect
        body = np.zeros((lh, lw), np.uint8)
        radius = min(0.4 * sw, sh)
        y_top = lh - sh
        cv2.rectangle(body, _fixed(cx - sw / 2, y_top + radius), _fixed(cx + sw / 2, lh + sw), 255, -1,
                      cv2.LINE_AA, _SHIFT)
        cv2.rectangle(body, _fixed(cx - sw / 2 + radius, y_top), _fixed(cx + sw / 2 - radius, lh + sw), 255, -1,
                      cv2.LINE_AA, _SHIFT)
        for corner in (cx - sw / 2 + radius, cx + sw / 2 - radius):
            cv2.circle(body, _fixed(corner, y_top + radius), round(radius * _ONE), 255, -1, cv2.LINE_AA, _SHIFT)
        neck = 0.14 * sw
        cv2.rectangle(body, _fixed(cx - neck, y_top - 0.2 * hh), _fixed(cx + neck, y_top + 1), 255, -1,
                      cv2.LINE_AA, _SHIFT)
        head = np.zeros((lh, lw), np.uint8)
        centre = _fixed(cx + head_dx * sw, y_top - 0.42 * hh)
        axes = (round(hw / 2 * _ONE), round(hh / 2 * _ONE))
        cv2.ellipse(head, centre, axes, tilt, 0, 360, 255, -1, cv2.LINE_AA, _SHIFT)
        return body.astype(np.float32) / 255.0, head.astype(np.float32) / 255.0

    def blurred(layer: np.ndarray) -> np.ndarray:
        # Replicate: the silhouette goes on beyond the frame edge it enters from.
        return cv2.GaussianBlur(layer, (0, 0), sigma, borderType=cv2.BORDER_REPLICATE)

    def footprint(scale: float) -> float:
        body, head = draw(scale)
        return float((blurred(np.maximum(body, head)) > visible).mean())

    # The footprint grows with the scale: bisect for the wanted share of the frame.
    lo, hi = 0.02, 4.0
    for _ in range(18):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if footprint(mid) < cover else (lo, mid)
    body, head = draw(0.5 * (lo + hi))
    body = body * (1.0 - head)  # the head is in front of the collar
    alpha = blurred(body + head)
    premultiplied = blurred(body[..., None] * body_colour + head[..., None] * head_colour)
    # Un-premultiply; where the silhouette has no weight at all keep the body colour, so the
    # upsampling below never mixes a colour with black.
    colour = np.where(alpha[..., None] > 1e-4, premultiplied / np.maximum(alpha, 1e-4)[..., None], body_colour)
    alpha = np.clip((alpha - eps) / (1.0 - eps), 0.0, 1.0)  # zero outside: the rest stays bit-identical
    if (lw, lh) != (w, h):
        alpha = cv2.resize(alpha, (w, h), interpolation=cv2.INTER_LINEAR)
        colour = cv2.resize(colour, (w, h), interpolation=cv2.INTER_LINEAR)
    alpha = alpha[..., None]
    return _to_u8(image.astype(np.float32) * (1.0 - alpha) + colour * alpha)


def compression(image: np.ndarray, rng: np.random.Generator, strength: float | None = None) -> np.ndarray:
    """Bit-rate drop: JPEG re-encode at low quality (blocking, ringing: a codec, not the lens)."""
    _check(image)
    s = _strength(rng, strength)
    quality = round(_lerp(40.0, 12.0, s))
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    decoded = cv2.imdecode(encoded, cv2.IMREAD_COLOR)
    if decoded is None or decoded.shape != image.shape:
        raise RuntimeError("JPEG decoding failed")
    return decoded


def ptz_move(image: np.ndarray, rng: np.random.Generator, strength: float | None = None) -> np.ndarray:
    """The camera moved to another preset: a different view at the same scale, no resampling
    (mirror + integer roll keep every pixel's sharpness; the wrap seams are sharp edges too)."""
    _check(image)
    s = _strength(rng, strength)
    h, w = image.shape[:2]
    fx = float(np.clip(_lerp(0.20, 0.45, s) + rng.uniform(-0.02, 0.02), 0.20, 0.45))
    fy = float(np.clip(_lerp(0.0, 0.20, s) + rng.uniform(-0.02, 0.02), 0.0, 0.20))
    dx = round(fx * w) * int(rng.choice([-1, 1]))
    dy = round(fy * h) * int(rng.choice([-1, 1]))
    return np.ascontiguousarray(np.roll(image[:, ::-1], (dy, dx), axis=(0, 1)))


def _line_kernel(length: float, angle: float) -> np.ndarray:
    """A normalised linear motion-blur kernel of sub-pixel `length` (bilinear splats of a line)."""
    size = 2 * math.ceil(length / 2.0) + 3
    kernel = np.zeros((size, size), np.float64)
    c = size // 2
    for t in np.linspace(-length / 2.0, length / 2.0, 33):
        x, y = c + t * math.cos(angle), c + t * math.sin(angle)
        x0, y0 = math.floor(x), math.floor(y)
        ax, ay = x - x0, y - y0
        kernel[y0, x0] += (1 - ax) * (1 - ay)
        kernel[y0, x0 + 1] += ax * (1 - ay)
        kernel[y0 + 1, x0] += (1 - ax) * ay
        kernel[y0 + 1, x0 + 1] += ax * ay
    return (kernel / kernel.sum()).astype(np.float32)


def vibration(image: np.ndarray, rng: np.random.Generator, strength: float | None = None) -> np.ndarray:
    """Mast or housing vibration: a small integer shift plus a very short motion blur."""
    _check(image)
    s = _strength(rng, strength)
    h, w = image.shape[:2]
    shift = _lerp(1.0, 4.0, s)
    direction = rng.uniform(0.0, 2.0 * math.pi)
    dx, dy = round(shift * math.cos(direction)), round(shift * math.sin(direction))
    if dx == 0 and dy == 0:
        dx = 1 if math.cos(direction) >= 0 else -1
    # Crop + replicate instead of np.roll: the new border shows no content from the far side.
    padded = cv2.copyMakeBorder(image, max(dy, 0), max(-dy, 0), max(dx, 0), max(-dx, 0), cv2.BORDER_REPLICATE)
    shifted = padded[max(-dy, 0) : max(-dy, 0) + h, max(-dx, 0) : max(-dx, 0) + w]
    # The blur length is given at 1920 px wide: the same shake of the mast spans fewer pixels on a
    # lower-resolution sensor (2.5 px at 1080p is ~0.5 px on a 352 px camera).
    length = max(0.5, _lerp(1.0, 2.5, s) * w / 1920)
    kernel = _line_kernel(length, rng.uniform(0.0, math.pi))
    return cv2.filter2D(shifted, -1, kernel, borderType=cv2.BORDER_REPLICATE)


_DISPATCH: dict[str, Nuisance] = {
    "ir_switch": ir_switch,
    "lights": lights,
    "exposure": exposure,
    "gain_noise": gain_noise,
    "sensor_noise": sensor_noise,
    "fog": fog,
    "rain": rain,
    "snow": snow,
    "headlights": headlights,
    "truck": truck,
    "person_near": person_near,
    "compression": compression,
    "ptz_move": ptz_move,
    "vibration": vibration,
}
assert tuple(_DISPATCH) == NUISANCES


def apply(name: str, image_bgr: np.ndarray, rng: np.random.Generator, strength: float | None = None) -> np.ndarray:
    """The frame with nuisance `name` applied (a new uint8 BGR array of the same shape). `strength` in [0, 1]
    picks the severity within the nuisance's range (None: drawn from rng); ValueError for an unknown name."""
    function = _DISPATCH.get(name) if isinstance(name, str) else None
    if function is None:
        raise ValueError(f"unknown nuisance {name!r}; known: {', '.join(NUISANCES)}")
    return function(image_bgr, rng, strength)
