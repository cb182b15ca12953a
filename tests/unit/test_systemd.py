"""systemd integration: the unit verifies cleanly, install-service stages it, the real daemon speaks sd_notify."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from focusguard.commands.cli import main
from focusguard.common.errors import FocusguardError
from focusguard.operate import service
from focusguard.settings.config import load_config
from tests.unit.test_watchdog import NotifySocket

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "focusguard.service"
FOCUSGUARD = Path(sys.executable).with_name("focusguard")  # the venv's console script
DEMO_CLIP = REPO / "demo" / "clip_focus_loss.mp4"
WriteConfig = Callable[..., Path]

needs_systemd_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze missing")


def unit_settings(text: str) -> dict[str, list[str]]:
    settings: dict[str, list[str]] = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key, []).append(value)
    return settings


@pytest.fixture
def rendered_unit(tmp_path: Path) -> Path:
    """The unit as install-service writes it, ExecStart= pointing at this venv's focusguard."""
    assert FOCUSGUARD.is_file(), f"{FOCUSGUARD} missing: is the package installed in this venv?"
    path = tmp_path / "focusguard.service"
    path.write_text(service.render_unit(UNIT.read_text(), FOCUSGUARD))
    return path


@needs_systemd_analyze
def test_unit_passes_systemd_analyze_verify_without_any_warning(rendered_unit: Path) -> None:
    result = subprocess.run(
        ["systemd-analyze", "verify", str(rendered_unit)], capture_output=True, text=True, timeout=60, check=False
    )
    # verify exits 0 even for unknown keys or values (e.g. Type=notfy): stderr must be empty too.
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    exec_start = unit_settings(rendered_unit.read_text())["ExecStart"][0].split()
    assert Path(exec_start[0]) == FOCUSGUARD and FOCUSGUARD.is_file()
    assert exec_start[1:] == ["run", "--config", "/etc/focusguard/focusguard.yaml"]


@needs_systemd_analyze
def test_verify_really_catches_a_typo(tmp_path: Path, rendered_unit: Path) -> None:
    broken = tmp_path / "broken.service"
    broken.write_text(rendered_unit.read_text().replace("Type=notify", "Type=notfy"))
    result = subprocess.run(["systemd-analyze", "verify", str(broken)], capture_output=True, text=True, check=False)
    assert "notfy" in result.stderr  # the check above is not vacuous


@needs_systemd_analyze
def test_hardening_exposure_is_low(rendered_unit: Path) -> None:
    result = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", str(rendered_unit)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+)", result.stdout)
    assert match, result.stdout + result.stderr
    assert float(match.group(1)) <= 2.5


def test_unit_has_the_required_settings() -> None:
    settings = unit_settings(UNIT.read_text())
    expected = {
        "Type": "notify",
        "Restart": "on-failure",
        "DynamicUser": "yes",
        "ProtectSystem": "strict",
        "ProtectHome": "yes",
        "PrivateTmp": "yes",
        "NoNewPrivileges": "yes",
        "StateDirectory": "focusguard",
        "SupplementaryGroups": "coral",
        "DevicePolicy": "closed",
    }
    for key, value in expected.items():
        assert settings[key] == [value], key
    assert int(settings["WatchdogSec"][0]) >= 10
    assert "char-apex rw" in settings["DeviceAllow"] and "/dev/apex_0 rw" in settings["DeviceAllow"]
    assert "char-usb_device rw" in settings["DeviceAllow"]
    assert settings["LoadCredential"] == ["focusguard:/etc/focusguard/credentials"]
    assert settings["ExecStart"][0].endswith("run --config /etc/focusguard/focusguard.yaml")
    assert settings["RestartPreventExitStatus"] == ["2"]  # a bad config is not retried forever


def test_udev_rule_covers_pcie_and_both_usb_ids() -> None:
    rules = [
        line for line in (REPO / "systemd" / "99-focusguard-coral.rules").read_text().splitlines()
        if line and not line.startswith("#")
    ]  # fmt: skip
    assert any('SUBSYSTEM=="apex"' in r and 'GROUP="coral"' in r for r in rules)
    for vendor, product in (("1a6e", "089a"), ("18d1", "9302")):
        assert any(f'ATTRS{{idVendor}}=="{vendor}"' in r and f'ATTRS{{idProduct}}=="{product}"' in r for r in rules)
    assert all('MODE="0660"' in r for r in rules)
    assert "g coral -" in (REPO / "systemd" / "focusguard.sysusers").read_text()


def test_sample_config_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    config = load_config(REPO / "systemd" / "focusguard.yaml")
    assert config.cameras and config.homeassistant.discovery


def test_site_example_config_validates_with_what_it_says() -> None:
    config = load_config(REPO / "config" / "site-example.yaml")
    cams = {c.name: c for c in config.cameras}
    assert all(c.detector == "fusion" for c in cams.values())
    assert (cams["parking_4k"].preprocess, cams["parking_4k"].interval_s) == ("tiles", 5.0)
    assert cams["yard"].fusion_threshold == 0.98 and cams["street"].fusion_threshold is None
    assert cams["lobby_ptz"].scene_change == "relearn" and cams["street"].scene_change == "tamper"
    assert cams["lobby_ptz"].refocus.action == "ptz_autofocus"


def test_install_service_stages_into_a_prefix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    assert main(["install-service", "--prefix", str(root), "--exec", str(FOCUSGUARD)]) == 0
    out = capsys.readouterr().out
    unit = root / "etc/systemd/system/focusguard.service"
    assert f"ExecStart={FOCUSGUARD} run --config" in unit.read_text()
    assert (root / "etc/udev/rules.d/99-focusguard-coral.rules").is_file()
    assert (root / "etc/sysusers.d/focusguard.conf").read_text() == (REPO / "systemd/focusguard.sysusers").read_text()
    config = root / "etc/focusguard/focusguard.yaml"
    assert load_config(config).cameras
    credentials = root / "etc/focusguard/credentials"
    assert credentials.is_dir() and credentials.stat().st_mode & 0o777 == 0o700
    assert "systemctl were not run" in out

    config.write_text(config.read_text() + "# edited by the admin\n")
    assert main(["install-service", "--prefix", str(root), "--exec", str(FOCUSGUARD)]) == 0
    out = capsys.readouterr().out
    assert "edited by the admin" in config.read_text()  # the config is never overwritten
    assert f"kept {config}" in out and f"unchanged {unit}" in out


def test_install_service_dry_run_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    assert main(["install-service", "--prefix", str(root), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert not root.exists()
    assert f"would write {root}/etc/systemd/system/focusguard.service" in out
    assert f"ExecStart: {FOCUSGUARD}" in out  # this installation's script is found by default


def test_install_service_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["install-service", "--prefix", str(tmp_path), "--exec", "relative/focusguard"]) == 2
    assert capsys.readouterr().err.startswith("focusguard: error: --exec: need an absolute path")
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["install-service", "--prefix", str(blocker), "--exec", str(FOCUSGUARD)]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_render_unit_requires_one_exec_start() -> None:
    with pytest.raises(FocusguardError, match="exactly one ExecStart"):
        service.render_unit("[Service]\n", FOCUSGUARD)


def test_real_daemon_notifies_ready_watchdog_and_stopping(
    tmp_path: Path, tiny_model: Path, write_config: WriteConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`focusguard run` as systemd starts it: NOTIFY_SOCKET and WATCHDOG_USEC set, no broker reachable."""
    receiver = NotifySocket(str(tmp_path / "notify.sock"))
    with socket_port() as port:
        camera = f"file://{DEMO_CLIP}" if DEMO_CLIP.is_file() else f"file://{tmp_path}/missing.mp4"
        config = write_config(
            f"""
            mqtt: {{host: 127.0.0.1, port: {port}}}
            model: {{path: {tiny_model}}}
            state_dir: {tmp_path / "state"}
            metrics: {{stats_interval_s: 0}}
            cameras:
              gate: {{url: "{camera}"}}
            """
        )
    env = {
        **{k: v for k, v in os.environ.items() if k != "WATCHDOG_PID"},
        "NOTIFY_SOCKET": receiver.address,
        "WATCHDOG_USEC": "2000000",
    }
    log = (tmp_path / "daemon.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "focusguard", "run", "--config", str(config)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    try:
        ready = receiver.wait_for("READY=1", timeout=60)
        receiver.wait_for("WATCHDOG=1", after=ready, timeout=10)
        time.sleep(2.2)
        assert receiver.count("WATCHDOG=1", after=ready) >= 2
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        receiver.wait_for("STOPPING=1", timeout=2)
    finally:
        proc.kill()
        log.close()
        receiver.close()
    text = (tmp_path / "daemon.log").read_text()
    assert "systemd watchdog: 2.0 s" in text and "Traceback" not in text


class socket_port:  # used like a function
    """A loopback TCP port nobody listens on (the broker is down: retried, never fatal)."""

    def __enter__(self) -> int:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        return int(self.sock.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.sock.close()
