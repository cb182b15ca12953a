"""What moves with a camera from one instance to another: its baselines and its focus verdict, in ZooKeeper.

Owns the node layout under ``<path>/cameras/<camera>/``: ``fusion.json`` and
``combined.json`` (the per-regime in-focus baselines, byte for byte the files the
detectors keep in ``<state_dir>/baseline/``) and ``verdict`` (``{"focus": "ok"|"lost"}``,
written at every focus event). The detectors keep reading and writing their local files;
this module copies ZooKeeper's copy down before an instance starts watching a camera,
and the local files up while it watches (`push_changed`, every few seconds) and when it
lets the camera go. So a camera that changes owner keeps its in-focus history (no
relearning, no alarm) and an active `focus_lost` is not raised a second time.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from focusguard.analysis.baseline import baseline_path, write_json_atomic
from focusguard.analysis.fusion import fusion_baseline_path

log = logging.getLogger(__name__)

MAX_NODE_BYTES = 900_000  # ZooKeeper's default jute.maxbuffer is 1 MiB per node


class SharedCameraState:
    """Copies one site's camera state between `state_dir` and ZooKeeper (`client`: a started KazooClient)."""

    def __init__(self, client: Any, root: str, state_dir: Path) -> None:
        self.client, self.root, self.state_dir = client, root.rstrip("/"), state_dir
        self._pushed: dict[tuple[str, str], float] = {}  # (camera, node) -> mtime of the file last pushed

    def _files(self, camera: str) -> dict[str, Path]:
        return {"fusion.json": fusion_baseline_path(self.state_dir, camera),
                "combined.json": baseline_path(self.state_dir, camera)}  # fmt: skip

    def node(self, camera: str, name: str) -> str:
        return f"{self.root}/cameras/{camera}/{name}"

    # ----------------------------------------------------------------- ZooKeeper -> local

    def pull(self, camera: str) -> str | None:
        """Write ZooKeeper's baselines of `camera` over the local files; returns the stored focus verdict."""
        for name, path in self._files(camera).items():
            data = self._get(self.node(camera, name))
            if data is None:
                continue  # none shared yet: a local file (a box that joined a group) is kept and pushed later
            try:
                write_json_atomic(path, json.loads(data))
                self._pushed[(camera, name)] = path.stat().st_mtime
            except (OSError, ValueError) as err:
                log.warning("camera %s: cannot take over the shared baseline %s: %s", camera, name, err)
        raw = self._get(self.node(camera, "verdict"))
        try:
            focus = json.loads(raw).get("focus") if raw else None
        except ValueError:
            focus = None
        return focus if focus in ("ok", "lost") else None

    def _get(self, node: str) -> bytes | None:
        from kazoo.exceptions import NoNodeError

        try:
            data, _stat = self.client.get(node)
        except NoNodeError:
            return None
        return bytes(data) if data else None

    # ----------------------------------------------------------------- local -> ZooKeeper

    def push_changed(self, camera: str) -> int:
        """Upload the baseline files changed since the last push; returns how many went up."""
        sent = 0
        for name, path in self._files(camera).items():
            try:
                mtime = path.stat().st_mtime
            except OSError:
                continue
            if self._pushed.get((camera, name)) == mtime:
                continue
            try:
                data = path.read_bytes()
            except OSError as err:
                log.warning("camera %s: cannot read %s to share it: %s", camera, path, err)
                continue
            if len(data) > MAX_NODE_BYTES:
                log.warning("camera %s: baseline %s is %d bytes, too large for ZooKeeper: not shared",
                            camera, path, len(data))
                continue
            self._set(self.node(camera, name), data)
            self._pushed[(camera, name)] = mtime
            sent += 1
        return sent

    def push_verdict(self, camera: str, focus: str) -> None:
        self._set(self.node(camera, "verdict"), json.dumps({"focus": focus}).encode())

    def _set(self, node: str, data: bytes) -> None:
        from kazoo.exceptions import NoNodeError

        try:
            self.client.set(node, data)
        except NoNodeError:
            self.client.create(node, data, makepath=True)

    def forget(self, camera: str) -> None:
        """This instance no longer holds `camera`: the next holder's files are the truth."""
        for key in [k for k in self._pushed if k[0] == camera]:
            del self._pushed[key]
