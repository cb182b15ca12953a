"""Sharing a site's cameras among live focusguard instances through ZooKeeper (kazoo).

Owns the group protocol, all of it ZooKeeper's own guarantees:
- membership: a kazoo `ShallowParty` under ``<path>/members`` (one ephemeral node per
  instance, gone when its session ends);
- assignment: rendezvous hashing of (instance, camera) over the live members, so every
  instance computes the same owner for each camera, and a join or a leave moves only
  that instance's share (about 1/N of the cameras; kazoo's `SetPartitioner` instead
  releases every camera of every instance at each change, which stops all watching);
- exclusion: an instance watches a camera only while it holds the ephemeral node
  ``<path>/owners/<camera>``; a camera whose node is still held by its previous owner
  waits (a watch on the node) until that owner lets it go or its session expires. So no
  camera is ever watched twice while ZooKeeper is reachable, whatever the members think.

ZooKeeper unreachable (the connection is SUSPENDED): the session may still be alive, so
the cameras stay held; after a quarter of the session timeout they are stopped here
(parked), because from then on the server may expire the session and hand them to others
(the client notices a dead connection up to 2/3 of the timeout late). When the same
session comes back, parked cameras resume; when it was lost, they are gone and the
instance re-joins as a new member. While ZooKeeper is unreachable at start-up, nothing
is watched.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from focusguard.settings.scaleout import CoordinationConfig

log = logging.getLogger(__name__)

PARK_FRACTION = 0.25  # of the session timeout: how long cameras stay held while ZooKeeper is unreachable
RETRY_WAITING_S = 10.0  # safety net: retry cameras whose owner-node watch never fired
TICK_S = 1.0


def owner_of(camera: str, members: Iterable[str]) -> str | None:
    """Rendezvous (highest random weight) hashing: the member with the highest hash of (member, camera)."""
    best, best_score = None, -1
    for member in members:
        score = int.from_bytes(hashlib.sha256(f"{member}\0{camera}".encode()).digest()[:8], "big")
        if score > best_score or (score == best_score and best is not None and member < best):
            best, best_score = member, score
    return best


Hold = Callable[[str], None]  # start watching a camera (its owner node is ours)
Release = Callable[[str, bool], None]  # stop watching; True: hand-over (ZooKeeper reachable), False: parked/lost


class Coordinator:
    """App extension: joins the group and calls `hold`/`release` as this instance's share changes."""

    def __init__(self, cfg: CoordinationConfig, cameras: Sequence[str], hold: Hold, release: Release,
                 sync: Callable[[set[str]], None] | None = None, client: Any = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg, self.me, self.cameras = cfg, cfg.instance_id, tuple(cameras)
        self._hold, self._release, self._sync, self._clock = hold, release, sync, clock
        self.client = client if client is not None else make_client(cfg)
        self.members_path, self.owners_path = f"{cfg.path}/members", f"{cfg.path}/owners"
        from kazoo.recipe.party import ShallowParty

        self.party = ShallowParty(self.client, self.members_path, self.me)
        self.held: set[str] = set()  # owner node ours, camera watched here
        self.parked: set[str] = set()  # owner node perhaps still ours, watching stopped (ZooKeeper unreachable)
        self.members: tuple[str, ...] = ()
        self.status = "connecting"  # connecting | joined | suspended | lost: readiness, <p>/stats
        self.moves = 0  # cameras taken or given up since start (stats)
        self._children: list[str] | None = None  # the members node's children, from the watch
        self._watching_members = False
        self._share_of: tuple[tuple[str, ...], set[str]] | None = None
        self._orphans: set[str] = set()  # owner nodes of ours still to delete (cameras let go)
        self._waiting: dict[str, float] = {}  # camera -> since when its owner node is someone else's
        self._suspended_since: float | None = None
        self._session_lost = False
        self._wake, self._stop = threading.Event(), threading.Event()
        self._thread: threading.Thread | None = None

    # ----------------------------------------------------------------- lifecycle

    def start(self) -> None:
        self.connect()
        self._thread = threading.Thread(target=self._run, name="coordination", daemon=True)
        self._thread.start()
        log.info("coordination: instance %s joining %s at %s (%d camera(s) in the site)",
                 self.me, self.cfg.path, self.cfg.hosts, len(self.cameras))

    def connect(self) -> None:
        """Listen to the connection state and start connecting (without the loop: `step()` by hand in tests)."""
        self.client.add_listener(self._on_state)
        self.client.start_async()  # ZooKeeper down at start: keep trying, watch nothing meanwhile

    def stop(self) -> None:
        """Hand every camera over (state saved, owner nodes deleted), leave the group, close the session."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(30.0)
        connected = self._connected()
        for camera in sorted(self.held | self.parked):
            try:
                self._let_go(camera, handover=connected)
            except Exception as err:  # ZooKeeper gone mid-way: the session's end frees the node
                log.warning("coordination: handing camera %s over failed: %s", camera, err)
        if connected:
            try:
                self.party.leave()
            except Exception as err:  # shutting down anyway: the session's end removes the node too
                log.warning("coordination: leaving the group failed: %s", err)
        self.client.stop()
        self.client.close()
        log.info("coordination: instance %s left %s", self.me, self.cfg.path)

    @property
    def ready(self) -> bool:
        return self.status == "joined"

    # ----------------------------------------------------------------- kazoo callbacks (its thread: no blocking)

    def _on_state(self, state: str) -> None:
        if state == "LOST":
            self._session_lost = True
        elif state == "SUSPENDED":
            self._suspended_since = self._clock()
        else:
            self._suspended_since = None
        self._wake.set()

    def _on_members(self, children: list[str]) -> None:
        self._children = list(children)
        self._wake.set()

    def _on_owner_node(self, event: Any) -> None:
        camera = str(getattr(event, "path", "")).rsplit("/", 1)[-1]
        self._waiting.pop(camera, None)
        self._wake.set()

    # ----------------------------------------------------------------- the loop

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(TICK_S)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                self.step()
            except Exception as err:  # ZooKeeper errors mid-step: the next tick starts over
                log.warning("coordination: %s: %s", type(err).__name__, err)
                self._stop.wait(0.5)

    def step(self) -> None:
        """One pass: react to the connection state, then bring `held` in line with this instance's share."""
        if self._session_lost:
            self._session_lost = False
            self._on_session_lost()
        if not self._connected():
            self.status = "suspended" if self._suspended_since is not None else self.status
            self._maybe_park()
            return
        self._ensure_joined()
        children = self._children
        if children is None:
            return
        if self.party.node not in children:
            self.party.join()  # a new session (the old one expired): join again; the watch reports it
            return
        self.members = tuple(sorted({c.split("-", 1)[1] for c in children if "-" in c}))
        self.status = "joined"
        self._delete_orphans()
        self._resume_parked()
        wanted = self._share(self.members)
        for camera in sorted(self.held - wanted):
            self._let_go(camera, handover=True)
        now = self._clock()
        for camera in sorted(wanted - self.held):
            since = self._waiting.get(camera)
            if since is None or now - since >= RETRY_WAITING_S:
                self._take(camera)
        if self._sync is not None and self.held:
            self._sync(set(self.held))

    def _share(self, members: tuple[str, ...]) -> set[str]:
        """This instance's cameras among `members` (hashing 2,000 x 20 costs ~40 ms: once per membership)."""
        if self._share_of is None or self._share_of[0] != members:
            self._share_of = (members, {c for c in self.cameras if owner_of(c, members) == self.me})
        return set(self._share_of[1])

    def _connected(self) -> bool:
        return str(self.client.state) == "CONNECTED"

    def _ensure_joined(self) -> None:
        if not self._watching_members:
            self.client.ensure_path(self.members_path)
            self.client.ensure_path(self.owners_path)
            self.party.join()
            self.client.ChildrenWatch(self.members_path, self._on_members)
            self._watching_members = True

    def _take(self, camera: str) -> None:
        from kazoo.exceptions import NodeExistsError

        node = f"{self.owners_path}/{camera}"
        try:
            self.client.create(node, self.me.encode(), ephemeral=True)
        except NodeExistsError:
            stat = self.client.exists(node, watch=self._on_owner_node)
            if stat is None:
                self._wake.set()  # it just went away: try again at once
                return
            if stat.ephemeralOwner != self._session_id():
                self._waiting.setdefault(camera, self._clock())
                return  # the previous owner still holds it: its node's deletion wakes us
        self._waiting.pop(camera, None)
        if self._start(camera):
            self.moves += 1
            log.info("coordination: instance %s now watches camera %s", self.me, camera)

    def _start(self, camera: str) -> bool:
        """`hold` a camera whose owner node is ours; a camera that cannot start is given back."""
        try:
            self._hold(camera)
        except Exception:
            log.exception("coordination: cannot start watching camera %s; giving it back", camera)
            self._delete_owner(camera)
            return False
        self.held.add(camera)
        return True

    def _let_go(self, camera: str, handover: bool) -> None:
        try:
            if camera in self.held:
                self._release(camera, handover)
        except Exception:
            log.exception("coordination: stopping camera %s failed", camera)
        self.held.discard(camera)
        self.parked.discard(camera)
        if handover:
            self._orphans.add(camera)  # until deleted: a failed delete is retried, never left to block the next owner
            self._delete_orphans()
            self.moves += 1
            log.info("coordination: instance %s handed camera %s over", self.me, camera)

    def _delete_orphans(self) -> None:
        for camera in sorted(self._orphans):
            self._delete_owner(camera)
            self._orphans.discard(camera)

    def _delete_owner(self, camera: str) -> None:
        from kazoo.exceptions import NoNodeError

        try:
            self.client.delete(f"{self.owners_path}/{camera}")
        except NoNodeError:
            pass

    def _session_id(self) -> int | None:
        client_id = getattr(self.client, "client_id", None)
        return client_id[0] if client_id else None

    def _maybe_park(self) -> None:
        since = self._suspended_since
        if since is None or not self.held:
            return
        if self._clock() - since >= PARK_FRACTION * self.cfg.session_timeout_s:
            log.warning("coordination: ZooKeeper unreachable for %.1f s: stopping %d camera(s) until it is back "
                        "(another instance may take them once this session expires)",
                        self._clock() - since, len(self.held))  # fmt: skip
            for camera in sorted(self.held):
                self._release(camera, False)
            self.parked |= self.held
            self.held.clear()

    def _resume_parked(self) -> None:
        """The same session came back: parked cameras whose owner node is still ours are watched again."""
        for camera in sorted(self.parked):
            self.parked.discard(camera)
            stat = self.client.exists(f"{self.owners_path}/{camera}")
            if stat is not None and stat.ephemeralOwner == self._session_id() and self._start(camera):
                log.info("coordination: ZooKeeper is back: camera %s watched again", camera)

    def _on_session_lost(self) -> None:
        """The session expired: every owner node is gone and others may watch these cameras already."""
        self.status = "lost"
        if self.held or self.parked:
            log.warning("coordination: ZooKeeper session expired: stopping %d camera(s); re-joining",
                        len(self.held | self.parked))
        for camera in sorted(self.held):
            self._release(camera, False)
        self.held.clear()
        self.parked.clear()
        self._waiting.clear()
        self._orphans.clear()  # ephemeral: they went with the session
        self.party.participating = False  # step() joins again once connected (kazoo re-watches the members)


def make_client(cfg: CoordinationConfig) -> Any:
    from kazoo.client import KazooClient
    from kazoo.retry import KazooRetry

    return KazooClient(
        hosts=cfg.hosts,
        timeout=cfg.session_timeout_s,
        connection_retry=KazooRetry(max_tries=-1, delay=0.2, max_delay=2.0),
        command_retry=KazooRetry(max_tries=3, delay=0.1, max_delay=1.0),
    )
