"""What the commands share: logging set-up, blaming the config key of a model problem, reading an image."""

from __future__ import annotations

import logging
import os
import sys

import numpy as np
import numpy.typing as npt

from focusguard.common.errors import ConfigError, ImageError, ModelError
from focusguard.settings.config import AppConfig


def setup_logging(level: str) -> None:
    # Under systemd the journal stamps each line already.
    fmt = "%(levelname)s %(name)s: %(message)s"
    if not os.environ.get("JOURNAL_STREAM"):
        fmt = "%(asctime)s " + fmt
    logging.basicConfig(level=level.upper(), stream=sys.stderr, format=fmt, force=True)
    # kazoo logs every ZooKeeper request at debug: a flood, and not ours to debug
    logging.getLogger("kazoo").setLevel(max(logging.INFO, logging.getLogger().level))


def model_config_error(config: AppConfig, err: ModelError) -> ConfigError:
    """Blame the config key a model problem came from."""
    model_path = config.model.path
    key = "model.path" if model_path is None or err.path == str(model_path) else "model.labels"
    return ConfigError(config.source, key, str(err))


def read_image(path: str) -> npt.NDArray[np.uint8]:
    """Decode an image file to BGR uint8 (H, W, 3); raises `ImageError`."""
    import cv2

    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as err:
        raise ImageError(path, f"cannot read image: {err.strerror or err}") from err
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise ImageError(path, "cannot read image: not a decodable image file")
    return image.astype(np.uint8, copy=False)
