"""Bad input through the command a service manager runs: ``focusguard run --config PATH``.

``tests/unit/test_config.py`` puts 50+ malformed configs through the CLI's ``main()``
(``check-config``) in-process; here a representative subset, plus every kind of bad model
file, goes through the real executable (``python -m focusguard run``): exit status 2,
exactly one stderr line naming the file, the key and the problem, nothing on stdout, no
traceback -- and nothing is started (no state directory is created).
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.support.daemon import focusguard_command
from tests.unit.test_config import MALFORMED
from tests.unit.tflite_builder import write_model

pytestmark = pytest.mark.integration

SUBSET = (
    "yaml-syntax", "yaml-tab", "empty-file", "unknown-top-key", "unknown-mqtt-key", "port-string",
    "port-too-big", "interval-negative", "interval-nan", "votes-no-hysteresis", "blurry-from-unknown",
    "duplicate-camera", "duplicate-mqtt-key", "camera-name", "url-scheme", "url-no-host", "env-unset",
    "tls-ca-missing", "password-file-missing", "defaults-type",
)  # fmt: skip

MODELS = {  # file maker, problem
    "missing": (lambda d: d / "missing.tflite", "model file not found"),
    "not-tflite": (lambda d: (d / "x.tflite").write_text("not a model") and d / "x.tflite", "not a TFLite model"),
    "wrong-input": (lambda d: write_model(d / "w.tflite", side=224), "input shape must be 1x448x448x3"),
    "wrong-classes": (lambda d: write_model(d / "c.tflite", classes=4), "output shape must be 1x9"),
}


def run_cli(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*focusguard_command(), "run", "--config", str(config)], capture_output=True,
                          text=True, timeout=60, check=False)


def test_malformed_configs_through_run(tmp_path: Path) -> None:
    cases = {m[0]: m for m in MALFORMED}
    jobs: list[tuple[str, Path, str, str]] = []
    for name in SUBSET:
        _id, text, key, problem = cases[name]
        path = tmp_path / f"{name}.yaml"
        # state_dir must never be created: the config is rejected before anything runs.
        extra = f"\nstate_dir: {tmp_path / 'state'}\n" if name not in ("yaml-syntax", "yaml-tab", "empty-file") \
            and not text.lstrip().startswith("-") and "state_dir" not in text else ""
        path.write_text(text + extra)
        jobs.append((name, path, key, problem))
    models = tmp_path / "models"
    models.mkdir()
    for name, (make, problem) in MODELS.items():
        model = make(models)
        path = tmp_path / f"model-{name}.yaml"
        path.write_text(f"model: {{path: {model}}}\nstate_dir: {tmp_path / 'state'}\n"
                        "cameras: {g: {url: 'rtsp://h/s'}}\n")
        jobs.append((f"model-{name}", path, "model.path", f"{model}: {problem}"))

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(lambda job: run_cli(job[1]), jobs))
    failures = []
    for (name, path, key, problem), r in zip(jobs, results, strict=True):
        lines = r.stderr.splitlines()
        ok = (r.returncode == 2 and r.stdout == "" and len(lines) == 1 and "Traceback" not in r.stderr
              and lines[0].startswith(f"focusguard: error: {path}: {key}: ") and problem in lines[0])
        if not ok:
            failures.append(f"{name}: rc={r.returncode} stdout={r.stdout!r} stderr={r.stderr!r}")
    print(f"\nFIGURES config: {len(jobs)} malformed configs through `focusguard run` "
          f"({len(SUBSET)} from tests/unit/test_config.py, {len(MODELS)} bad models), {len(failures)} failed")
    assert failures == []
    assert not (tmp_path / "state").exists()
