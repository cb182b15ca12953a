"""Running the service: `app` wires sources -> analysis -> delivery per camera, `extensions`
(watchdog, discovery, refocus, stats) start and stop beside it, `service` installs the systemd
unit, `watchdog`/`notify` talk to systemd, `refocus` asks cameras to autofocus, `statelock`
keeps one daemon per state directory. May import every stage below it, never `commands`."""

from __future__ import annotations
