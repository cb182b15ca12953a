"""Start, stop and restart ``rtsp_server.py`` (under Debian's /usr/bin/python3).

srv = RtspServer({"/cam1": clip}, workdir).start()   # free port
url = srv.url("/cam1")
srv.stop()                                           # clients see EOF
srv.start()                                          # same port, same URL
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

from .procs import clean_env_for_system_python, stop_process, tail, wait_line

SERVER_SCRIPT = Path(__file__).resolve().with_name("rtsp_server.py")
SYSTEM_PYTHON = os.environ.get("FOCUSGUARD_GI_PYTHON", "/usr/bin/python3")


@functools.lru_cache(maxsize=1)
def rtsp_server_problem() -> str | None:
    """None when the GStreamer RTSP server can run here, else why not."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} not found"
    code = (
        "import gi; gi.require_version('Gst','1.0'); gi.require_version('GstRtspServer','1.0');"
        "from gi.repository import Gst, GstRtspServer; Gst.init(None);"
        "missing=[e for e in ('appsrc','appsink','parsebin','h264parse','rtph264pay','qtdemux')"
        " if Gst.ElementFactory.find(e) is None]; print(' '.join(missing))"
    )
    try:
        r = subprocess.run(
            [SYSTEM_PYTHON, "-c", code],
            capture_output=True,
            text=True,
            timeout=30,
            env=clean_env_for_system_python(),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"{SYSTEM_PYTHON}: {err}"
    if r.returncode != 0:
        return "python3-gi / gir1.2-gst-rtsp-server-1.0 missing: " + (r.stderr.strip().splitlines() or ["?"])[-1]
    if r.stdout.strip():
        return f"GStreamer elements missing: {r.stdout.strip()}"
    return None


class RtspServer:
    def __init__(
        self,
        mounts: Mapping[str, Path | str],
        workdir: Path | str,
        port: int = 0,
        host: str = "127.0.0.1",
        start_frame: int = 0,
    ) -> None:
        self.mounts = {m if m.startswith("/") else "/" + m: Path(p) for m, p in mounts.items()}
        self.workdir = Path(workdir)
        self.host = host
        self.port = port  # 0 until the first start picked one; then fixed
        self.start_frame = start_frame
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def base_url(self) -> str:
        return f"rtsp://{self.host}:{self.port}"

    def url(self, mount: str) -> str:
        if not mount.startswith("/"):
            mount = "/" + mount
        return self.base_url + mount

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self, timeout: float = 30.0) -> RtspServer:
        if self.running:
            return self
        self.workdir.mkdir(parents=True, exist_ok=True)
        cmd = [
            SYSTEM_PYTHON,
            str(SERVER_SCRIPT),
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--start-frame",
            str(self.start_frame),
        ]
        for m, p in self.mounts.items():
            cmd += ["--mount", f"{m}={p}"]
        # A restart on a fixed port may race the old socket's release: retry briefly.
        deadline = time.monotonic() + timeout
        while True:
            self.starts += 1
            out = self.workdir / f"rtsp-{self.starts}.out"
            err = self.workdir / f"rtsp-{self.starts}.log"
            with out.open("wb") as fo, err.open("wb") as fe:
                self.proc = subprocess.Popen(
                    cmd, stdout=fo, stderr=fe, stdin=subprocess.DEVNULL, env=clean_env_for_system_python()
                )
            line = wait_line(out, "READY ", max(1.0, deadline - time.monotonic()), self.proc)
            if line is not None:
                self.port = int(line.split()[1].rsplit(":", 1)[1])
                self.out_path, self.log_path = out, err
                return self
            rc = self.proc.poll()
            stop_process(self.proc)
            self.proc = None
            if rc == 3 and self.port and time.monotonic() < deadline:  # cannot listen yet
                time.sleep(0.2)
                continue
            raise RuntimeError(f"RTSP server did not start (rc={rc}):\n{tail(err)}")

    def stop(self, kill: bool = False) -> None:
        """Stop the server (SIGTERM, or SIGKILL with ``kill``); the port is kept."""
        if self.proc is not None:
            stop_process(self.proc, sig=signal.SIGKILL if kill else signal.SIGTERM)
            self.proc = None

    def restart(self) -> RtspServer:
        self.stop()
        return self.start()

    def __enter__(self) -> RtspServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
