"""A real ZooKeeper server (Debian's `zookeeper` package, standalone) on a free loopback port.

with ZooKeeper(workdir) as zk:     # java ... ZooKeeperServerMain zoo.cfg
    zk.hosts                       # "127.0.0.1:PORT" for kazoo / focusguard
    zk.four("mntr")                # a four-letter-word command's answer
    zk.pause(); zk.resume()        # SIGSTOP / SIGCONT: ZooKeeper unreachable, sessions not yet expired

tickTime is 500 ms, so session timeouts from 1 s to 10 s are accepted (2 to 20 ticks).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from .procs import free_port, stop_process, tail

JAVA_DIR = Path("/usr/share/java")
# The jars ZooKeeperServerMain needs (Debian 12: zookeeper 3.8 and its dependencies).
JARS = ("zookeeper.jar", "zookeeper-jute.jar", "slf4j-api.jar", "slf4j-simple.jar", "netty-handler.jar",
        "netty-common.jar", "netty-transport.jar", "netty-buffer.jar", "netty-codec.jar", "netty-resolver.jar",
        "netty-transport-native-epoll.jar", "netty-transport-native-unix-common.jar", "commons-cli.jar",
        "metrics-core.jar", "snappy-java.jar")  # fmt: skip
TICK_MS = 500


def zookeeper_problem() -> str | None:
    """Why no ZooKeeper server can be started here, or None."""
    if shutil.which("java") is None:
        return "java not installed (apt-get install zookeeper pulls it in)"
    missing = [j for j in JARS[:2] if not (JAVA_DIR / j).is_file()]
    return f"ZooKeeper jars missing ({', '.join(missing)}): apt-get install zookeeper" if missing else None


class ZooKeeper:
    def __init__(self, workdir: Path | str, host: str = "127.0.0.1") -> None:
        self.workdir, self.host, self.port = Path(workdir), host, 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.workdir / "zookeeper.log"

    @property
    def hosts(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> ZooKeeper:
        problem = zookeeper_problem()
        if problem:
            raise RuntimeError(problem)
        data = self.workdir / "data"
        data.mkdir(parents=True, exist_ok=True)
        self.port = self.port or free_port(self.host)
        conf = self.workdir / "zoo.cfg"
        conf.write_text(
            f"tickTime={TICK_MS}\ndataDir={data}\nclientPort={self.port}\nclientPortAddress={self.host}\n"
            "admin.enableServer=false\n4lw.commands.whitelist=mntr,srvr,ruok,stat,cons\n"
            "maxClientCnxns=0\n"
        )
        classpath = ":".join(str(JAVA_DIR / j) for j in JARS if (JAVA_DIR / j).is_file())
        cmd = ["java", "-Xmx256m", "-cp", classpath, "org.apache.zookeeper.server.ZooKeeperServerMain", str(conf)]
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if "Mode: standalone" in self.four("srvr"):
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"ZooKeeper did not start:\n{tail(self.log_path)}")

    def four(self, command: str, timeout: float = 2.0) -> str:
        """A four-letter-word command (mntr, srvr, cons); '' when it cannot be asked."""
        try:
            with socket.create_connection((self.host, self.port), timeout=timeout) as sock:
                sock.sendall(command.encode())
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
                return b"".join(chunks).decode(errors="replace")
        except OSError:
            return ""

    def mntr(self) -> dict[str, str]:
        return dict(line.split("\t", 1) for line in self.four("mntr").splitlines() if "\t" in line)

    def pause(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGCONT)
            stop_process(self.proc)
            self.proc = None

    def __enter__(self) -> ZooKeeper:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
