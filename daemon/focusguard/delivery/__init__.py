"""Getting the word out: the durable `outbox` (SQLite, per-instance identity), the MQTT
`publish`er (TLS, auth, retained state, birth/will), Home Assistant `discovery`, and `metrics`
(`<p>/stats`, Prometheus). May import `common` and `settings`."""

from __future__ import annotations
