"""The int8 TFLite classifier: model/label resolution, validation, backend choice, inference.

Owns which runtime runs the model (import order `ai_edge_litert` → `tflite_runtime`
→ `tensorflow.lite`), which backend (Edge TPU delegate or CPU with XNNPACK, falling
back to CPU with a logged reason), and the output dequantisation
(`scale * (q - zero_point)`, renormalised to sum 1). One `Classifier` is shared by all
cameras; `classify` is serialised by a lock because a TFLite interpreter is not
re-entrant.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import numpy.typing as npt

from focusguard.analysis.preprocess import MODEL_SIDE, quantize_input
from focusguard.common.errors import ModelError

log = logging.getLogger(__name__)

MODEL_NAME = "focusguard_pix2pix_448_int8.tflite"
DEFAULT_LABELS: tuple[str, ...] = ("sharp", "b_0.5", "b_0.75", "b_1", "b_2", "b_3", "b_4", "b_5", "b_7")
EDGETPU_LIBRARY = "libedgetpu.so.1"
INPUT_SHAPE = (1, MODEL_SIDE, MODEL_SIDE, 3)
_TFLITE_MAGIC = b"TFL3"  # flatbuffer file identifier at bytes 4..8


def default_model_path() -> Path:
    """The shipped model: package data of `focusguard.analysis` (wheel or source tree), else the
    ACAP/systemd copies in /usr/local/share or /usr/share."""
    packaged = Path(str(resources.files("focusguard.analysis").joinpath("model", MODEL_NAME)))
    candidates = [packaged, Path("/usr/local/share/focusguard") / MODEL_NAME, Path("/usr/share/focusguard") / MODEL_NAME]
    return next((c for c in candidates if c.is_file()), packaged)


def labels_path_for(model_path: Path, labels_path: Path | None = None) -> Path | None:
    """`labels_path` if given, else `<stem>.labels.txt` or `labels.txt` beside the model, else None."""
    if labels_path is not None:
        return labels_path
    for candidate in (model_path.with_suffix(".labels.txt"), model_path.parent / "labels.txt"):
        if candidate.is_file():
            return candidate
    return None


def load_labels(path: Path) -> list[str]:
    """One class name per line (blank lines ignored); raises `ModelError`."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise ModelError(path, f"cannot read labels: {getattr(err, 'strerror', None) or err}") from err
    labels = [line.strip() for line in lines if line.strip()]
    if len(labels) < 2:
        raise ModelError(path, f"expected at least 2 labels, found {len(labels)}")
    if len(set(labels)) != len(labels):
        raise ModelError(path, "duplicate labels")
    return labels


def _runtime() -> tuple[ModuleType, str]:
    """The first importable TFLite runtime module (exposing `Interpreter`, `load_delegate`)."""
    with contextlib.suppress(ImportError):
        from ai_edge_litert import interpreter as litert

        return litert, "ai_edge_litert"
    with contextlib.suppress(ImportError):
        import tflite_runtime.interpreter as tflite_runtime  # type: ignore[import-not-found,unused-ignore]

        return tflite_runtime, "tflite_runtime"
    try:
        import tensorflow as tf  # type: ignore[import-not-found,unused-ignore]
    except ImportError as err:
        raise ModelError("(runtime)", "no TFLite runtime: pip install ai-edge-litert") from err
    return tf.lite, "tensorflow.lite"


@contextlib.contextmanager
def _native_stderr_to_debug_log() -> Iterator[None]:
    """Route the runtime's C++ stderr chatter ("INFO: Created ... XNNPACK delegate") to the debug log.

    Only used while building interpreters (at start, before other threads write to
    stderr): the CLI promises one stderr line per error and clean `--json` output.
    """
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(2)
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            for line in sink.read().decode(errors="replace").splitlines():
                log.debug("tflite: %s", line)


@dataclass(frozen=True)
class ModelInfo:
    """What `validate_model` found."""

    path: Path
    labels: tuple[str, ...]
    input_dtype: str
    runtime: str


def _check_file(path: Path) -> None:
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
    except OSError as err:
        raise ModelError(path, f"cannot read model: {err.strerror or err}") from err
    if len(head) < 8 or head[4:8] != _TFLITE_MAGIC:
        raise ModelError(path, "not a TFLite model (no TFL3 flatbuffer identifier)")


def _check_interpreter(path: Path, interpreter: Any, labels: Sequence[str]) -> None:
    inputs = interpreter.get_input_details()
    outputs = interpreter.get_output_details()
    if len(inputs) != 1 or len(outputs) != 1:
        raise ModelError(path, f"expected 1 input and 1 output, found {len(inputs)} and {len(outputs)}")
    shape = tuple(int(d) for d in inputs[0]["shape"])
    if shape != INPUT_SHAPE:
        raise ModelError(path, f"input shape must be 1x448x448x3, got {'x'.join(map(str, shape))}")
    out_shape = tuple(int(d) for d in outputs[0]["shape"])
    if out_shape != (1, len(labels)):
        raise ModelError(
            path, f"output shape must be 1x{len(labels)} (one score per label), got {'x'.join(map(str, out_shape))}"
        )


def _resolve(model_path: str | Path | None, labels_path: str | Path | None) -> tuple[Path, tuple[str, ...]]:
    path = Path(model_path) if model_path is not None else default_model_path()
    if not path.is_file():
        raise ModelError(path, "model file not found")
    labels_file = labels_path_for(path, Path(labels_path) if labels_path is not None else None)
    labels = tuple(load_labels(labels_file)) if labels_file is not None else DEFAULT_LABELS
    return path, labels


def validate_model(model_path: str | Path | None = None, labels_path: str | Path | None = None) -> ModelInfo:
    """Check that the model is a TFLite file with a 1x448x448x3 input and one output per label."""
    path, labels = _resolve(model_path, labels_path)
    _check_file(path)
    runtime, runtime_name = _runtime()
    interpreter = _make_cpu_interpreter(runtime, path, threads=1)
    _check_interpreter(path, interpreter, labels)
    dtype = np.dtype(interpreter.get_input_details()[0]["dtype"]).name
    return ModelInfo(path=path, labels=labels, input_dtype=dtype, runtime=runtime_name)


def _make_cpu_interpreter(runtime: ModuleType, path: Path, threads: int) -> Any:
    try:
        with _native_stderr_to_debug_log():
            interpreter = runtime.Interpreter(model_path=str(path), num_threads=threads)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as err:
        raise ModelError(path, f"cannot load model: {str(err).strip().splitlines()[0]}") from err
    return interpreter


def _make_edgetpu_interpreter(runtime: ModuleType, path: Path) -> Any:
    """Interpreter on the Edge TPU; raises OSError/ValueError/RuntimeError when unavailable."""
    try:
        from pycoral.utils.edgetpu import make_interpreter  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        make_interpreter = None  # Google's pycoral is optional and stale: use the delegate directly
    with _native_stderr_to_debug_log():
        if make_interpreter is not None:
            interpreter = make_interpreter(str(path))
        else:
            # Probe first: the runtime's own failure path raises ValueError and then prints a
            # traceback from Delegate.__del__ to stderr; CDLL gives a clean OSError instead.
            ctypes.CDLL(EDGETPU_LIBRARY)
            delegate = runtime.load_delegate(EDGETPU_LIBRARY)
            interpreter = runtime.Interpreter(model_path=str(path), experimental_delegates=[delegate])
        interpreter.allocate_tensors()
    return interpreter


class Classifier:
    """Thread-safe 9-class blur classifier over one TFLite interpreter."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        labels_path: str | Path | None = None,
        device: str = "auto",
        threads: int = 2,
    ) -> None:
        if device not in ("auto", "cpu", "edgetpu"):
            raise ValueError(f"device must be auto, cpu or edgetpu, got {device!r}")
        self.model_path, labels = _resolve(model_path, labels_path)
        self.labels: tuple[str, ...] = labels
        _check_file(self.model_path)
        runtime, self.runtime = _runtime()
        self._interpreter, self.backend, self.backend_reason = self._open(runtime, device, threads)
        _check_interpreter(self.model_path, self._interpreter, self.labels)
        inp = self._interpreter.get_input_details()[0]
        out = self._interpreter.get_output_details()[0]
        self._input_index: int = inp["index"]
        self._input_dtype = np.dtype(inp["dtype"])
        self._input_scale, self._input_zero = (float(inp["quantization"][0]), int(inp["quantization"][1]))
        self._output_index: int = out["index"]
        self._output_scale, self._output_zero = (float(out["quantization"][0]), int(out["quantization"][1]))
        self._lock = threading.Lock()

    def _open(self, runtime: ModuleType, device: str, threads: int) -> tuple[Any, str, str]:
        """(interpreter, backend, reason): Edge TPU when asked/possible, else CPU."""
        if device == "cpu":
            return _make_cpu_interpreter(runtime, self.model_path, threads), "cpu", "device: cpu"
        compiled = self.model_path.with_name(f"{self.model_path.stem}_edgetpu.tflite")
        if not compiled.is_file():
            reason = f"no Edge TPU model {compiled.name} beside the model"
        else:
            try:
                interpreter = _make_edgetpu_interpreter(runtime, compiled)
                return interpreter, "edgetpu", f"Edge TPU model {compiled.name}"
            except (OSError, ValueError, RuntimeError) as err:
                reason = f"Edge TPU unavailable ({str(err).strip() or type(err).__name__})"
        if device == "edgetpu":
            raise ModelError(self.model_path, f"device edgetpu requested but {reason}")
        cpu = _make_cpu_interpreter(runtime, self.model_path, threads)
        return cpu, "cpu", f"CPU fallback: {reason}"

    def classify(self, rgb448: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        """Class probabilities (float32, sums to 1) for one (448, 448, 3) uint8 RGB image."""
        if rgb448.shape != INPUT_SHAPE[1:] or rgb448.dtype != np.uint8:
            raise ValueError(f"expected a (448, 448, 3) uint8 image, got {rgb448.shape} {rgb448.dtype}")
        tensor = quantize_input(rgb448, self._input_scale, self._input_zero, self._input_dtype)[np.newaxis]
        with self._lock:
            self._interpreter.set_tensor(self._input_index, tensor)
            self._interpreter.invoke()
            raw = np.array(self._interpreter.get_tensor(self._output_index)[0])
        return dequantize_probs(raw, self._output_scale, self._output_zero)


def dequantize_probs(raw: npt.NDArray[Any], scale: float, zero_point: int) -> npt.NDArray[np.float32]:
    """`scale * (q - zero_point)` for quantised outputs, clipped at 0 and renormalised to sum 1."""
    values = raw.astype(np.float32)
    if np.issubdtype(raw.dtype, np.integer) and scale != 0:
        values = np.float32(scale) * (values - np.float32(zero_point))
    values = np.clip(values, 0.0, None)
    total = float(values.sum())
    if total <= 0:  # all-zero scores carry no information: say so honestly
        return np.full(values.shape, 1.0 / len(values), dtype=np.float32)
    return (values / np.float32(total)).astype(np.float32)
