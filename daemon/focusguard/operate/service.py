"""`focusguard install-service`: the systemd unit, the Coral udev rule, the `coral` group, a sample config.

Owns the install plan (what goes where, with which mode; the config and the
credentials directory are never overwritten), rendering the unit (ExecStart= points at
the focusguard script that is running, or `--exec`), and the follow-up commands
(`systemd-sysusers`, `udevadm`, `systemctl daemon-reload`), which run only for the real
root (`--prefix /`, not `--dry-run`). `--prefix DIR` installs into a staging tree (for
packaging and tests). The templates live in the repository's `systemd/` folder, or in
`<prefix>/share/focusguard/systemd` for a wheel install.
"""

from __future__ import annotations

import argparse
import errno
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from focusguard.common.errors import FocusguardError

UNIT = "focusguard.service"
CONFIG = Path("etc/focusguard/focusguard.yaml")
CREDENTIALS = Path("etc/focusguard/credentials")


@dataclass(frozen=True)
class Item:
    template: str  # file name in the template directory
    target: Path  # relative to the prefix
    mode: int
    replace: bool  # False: an existing file is kept (the admin's config)


ITEMS = (
    Item(UNIT, Path("etc/systemd/system") / UNIT, 0o644, True),
    Item("99-focusguard-coral.rules", Path("etc/udev/rules.d/99-focusguard-coral.rules"), 0o644, True),
    Item("focusguard.sysusers", Path("etc/sysusers.d/focusguard.conf"), 0o644, True),
    Item("focusguard.yaml", CONFIG, 0o644, False),
)
FOLLOW_UP = (
    ["systemd-sysusers", "/etc/sysusers.d/focusguard.conf"],
    ["udevadm", "control", "--reload"],
    ["udevadm", "trigger", "--subsystem-match=apex", "--subsystem-match=usb"],
    ["systemctl", "daemon-reload"],
)


def template_dir() -> Path:
    """The folder holding focusguard.service & co (source checkout first, then installed data)."""
    candidates = [
        Path(__file__).resolve().parents[3] / "systemd",  # <repo>/daemon/focusguard/operate/service.py
        Path(sys.prefix) / "share" / "focusguard" / "systemd",
        Path("/usr/local/share/focusguard/systemd"),
        Path("/usr/share/focusguard/systemd"),
    ]
    for folder in candidates:
        if (folder / UNIT).is_file():
            return folder
    raise FocusguardError(f"cannot find {UNIT} (looked in {', '.join(map(str, candidates))})")


def default_executable() -> Path | None:
    """The `focusguard` console script of this installation."""
    beside = Path(sys.executable).with_name("focusguard")
    if beside.is_file() and os.access(beside, os.X_OK):
        return beside
    found = shutil.which("focusguard")
    return Path(found).resolve() if found else None


def render_unit(text: str, executable: Path) -> str:
    """The unit with ExecStart= running `executable` (absolute, no spaces: systemd would split it)."""
    if not executable.is_absolute() or any(c.isspace() for c in str(executable)):
        raise FocusguardError(f"--exec: need an absolute path without spaces, got {executable}")
    rendered, count = re.subn(r"^ExecStart=\S+", f"ExecStart={executable}", text, flags=re.MULTILINE)
    if count != 1:
        raise FocusguardError(f"{UNIT}: expected exactly one ExecStart= line, found {count}")
    return rendered


def install(prefix: Path, executable: Path | None = None, dry_run: bool = False, follow_up: bool = True) -> list[str]:
    """Install into `prefix`; returns the report lines (what was, or would be, done)."""
    executable = executable or default_executable()
    if executable is None:
        raise FocusguardError("cannot find the focusguard executable; give it with --exec PATH")
    source = template_dir()
    prefix = prefix.resolve()
    verb = "would " if dry_run else ""
    report = [f"templates: {source}", f"ExecStart: {executable}"]
    if str(executable).startswith(("/home/", "/root/")):
        report.append(f"warning: {executable} is under /home or /root, which ProtectHome=yes hides from the service")
    for item in ITEMS:
        target = prefix / item.target
        text = (source / item.template).read_text(encoding="utf-8")
        if item.template == UNIT:
            text = render_unit(text, executable)
        if target.exists() and not item.replace:
            report.append(f"kept {target} (exists)")
            continue
        if target.exists() and target.read_text(encoding="utf-8") == text:
            report.append(f"unchanged {target}")
            continue
        report.append(f"{verb}write {target}")
        if not dry_run:
            _write(target, text, item.mode)
    credentials = prefix / CREDENTIALS
    if not credentials.is_dir():
        report.append(f"{verb}create {credentials}/ (mode 0700: one file per secret)")
        if not dry_run:
            _mkdir(credentials)
    if prefix == Path("/") and follow_up:
        for command in FOLLOW_UP:
            report.append(f"{verb}run {' '.join(command)}")
            if not dry_run:
                _run(command, report)
    elif prefix != Path("/"):
        report.append("staging prefix: systemd-sysusers, udevadm and systemctl were not run")
    report.append(f"next: edit /{CONFIG}, then `systemctl enable --now focusguard`")
    return report


def _write(target: Path, text: str, mode: int) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.chmod(mode)
        tmp.replace(target)
    except OSError as err:
        hint = " (run as root, or use --prefix DIR / --dry-run)" if err.errno in (errno.EPERM, errno.EACCES) else ""
        raise FocusguardError(f"{target}: cannot write: {err.strerror or err}{hint}") from err


def _mkdir(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o700)
    except OSError as err:
        raise FocusguardError(f"{path}: cannot create: {err.strerror or err}") from err


def _run(command: list[str], report: list[str]) -> None:
    if shutil.which(command[0]) is None:
        report.append(f"  skipped: {command[0]} not found")
        return
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        report.append(f"  failed ({result.returncode}): {(result.stderr or result.stdout).strip()[:300]}")


# --------------------------------------------------------------------------- CLI


def register(commands: Any) -> None:
    """Add `install-service` to the CLI's subcommands."""
    parser = commands.add_parser(
        "install-service", help="install the systemd unit, Coral udev rule and a sample config"
    )
    parser.add_argument("--prefix", type=Path, default=Path("/"), help="install below this root (default: /)")
    parser.add_argument("--dry-run", action="store_true", help="only print what would be done")
    parser.add_argument("--exec", dest="executable", type=Path, help="focusguard executable for ExecStart=")
    parser.add_argument(
        "--no-reload", dest="follow_up", action="store_false", help="do not run systemd-sysusers/udevadm/systemctl"
    )
    parser.set_defaults(func=_cmd_install_service)


def _cmd_install_service(args: argparse.Namespace) -> int:
    for line in install(args.prefix, args.executable, dry_run=args.dry_run, follow_up=args.follow_up):
        print(line)
    return 0
