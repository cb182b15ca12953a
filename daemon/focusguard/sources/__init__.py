"""Where frames come from: `grab.StreamGrabber` reads RTSP/files with PyAV (keyframes on demand,
reconnects, corrupt-frame skipping) and hands the newest frame out as BGR. May import `common`
and `settings`."""

from __future__ import annotations
