"""Test and demo support: private mosquitto, GStreamer RTSP server, clips, daemon runner.

Usable from pytest fixtures (``tests/integration/conftest.py``) and from the demo
(``scripts/demo.py``).  Only the stdlib, numpy, opencv, PyAV, paho-mqtt and PyYAML are
imported here (all in the venv); ``rtsp_server.py`` itself runs under /usr/bin/python3.
"""

from .daemon import Daemon, focusguard_command, write_config
from .mqtt import (
    Message,
    Mosquitto,
    MqttCollector,
    mosquitto_binary,
    retained,
    wait_retained,
)
from .procs import free_port
from .rtsp import RtspServer, rtsp_server_problem

__all__ = [
    "Daemon",
    "Message",
    "Mosquitto",
    "MqttCollector",
    "RtspServer",
    "focusguard_command",
    "free_port",
    "mosquitto_binary",
    "retained",
    "rtsp_server_problem",
    "wait_retained",
    "write_config",
]
