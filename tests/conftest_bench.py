"""Fixtures for the benchmark harness tests (tests/test_bench*.py, test_devices_local.py, test_adb_device.py).

Wire into tests/conftest.py with `pytest_plugins = ["tests.conftest_adb", "tests.conftest_bench"]`
(the test modules also import what they use, so they run before that wiring exists).

* `tiny_tflite` (session): {"fp32": Path, "int8": Path} — a 6-op Keras CNN (conv, depthwise,
  pointwise, pool, dense) converted by tf.lite.TFLiteConverter, fp32 and full-integer int8
  (int8 input/output, 8-sample representative dataset). Cached in pytest's cache dir by
  TensorFlow version, so only the first session pays the ~10 s conversion.
* `host_runner` (session): an executable "benchmark binary" wrapping
  android_harness/host_benchmark_model.py with this venv's python in its shebang.
* `litert_runner` (session): the same stand-in speaking LiteRT's tool (MOBILEDEPLOY_STANDIN=litert set
  inside the wrapper), with a placeholder `libLiteRtClGlAccelerator.so` beside it as LiteRT publishes it.
* `binaries_server` (function): a loopback HTTP server laid out like LiteRT's binaries bucket
  (`/<ai-edge-litert version>/android_arm64/{benchmark_model,libLiteRtClGlAccelerator.so}`), its URL in
  $MOBILEDEPLOY_BINARIES_URL, a fresh $MOBILEDEPLOY_CACHE, and no configured binary.
* `failing_runner` (session): a "benchmark binary" that prints an error and exits 3.
* `results_db` (function): a fresh database path, also exported as $MOBILEDEPLOY_DB.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Iterator

import pytest

from tests.conftest_adb import adb_env, fake_device  # noqa: F401  (re-exported for the adb tests)

REPO = Path(__file__).resolve().parents[1]
HOST_RUNNER = REPO / "android_harness" / "host_benchmark_model.py"

_MAKE_TINY = textwrap.dedent("""
    import os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import numpy as np, tensorflow as tf
    out = sys.argv[1]
    inp = tf.keras.Input((32, 32, 3), batch_size=1)
    x = tf.keras.layers.Conv2D(8, 3, strides=2, padding="same", activation="relu")(inp)
    x = tf.keras.layers.DepthwiseConv2D(3, padding="same", activation="relu")(x)
    x = tf.keras.layers.Conv2D(16, 1, activation="relu")(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    model = tf.keras.Model(inp, tf.keras.layers.Dense(10)(x))
    open(os.path.join(out, "tiny_fp32.tflite"), "wb").write(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    rng = np.random.default_rng(0)
    conv.representative_dataset = lambda: ([rng.standard_normal((1, 32, 32, 3)).astype(np.float32)] for _ in range(8))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    open(os.path.join(out, "tiny_int8.tflite"), "wb").write(conv.convert())
""")


@pytest.fixture(scope="session")
def tiny_tflite(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from importlib import metadata

    name = f"mobiledeploy-tiny-tflite-tf{metadata.version('tensorflow')}"
    store = getattr(request.config, "cache", None)  # absent under -p no:cacheprovider
    cache = Path(store.mkdir(name)) if store is not None else tmp_path_factory.mktemp(name)
    paths = {"fp32": cache / "tiny_fp32.tflite", "int8": cache / "tiny_int8.tflite"}
    if not all(p.is_file() and p.stat().st_size > 0 for p in paths.values()):
        subprocess.run([sys.executable, "-c", _MAKE_TINY, str(cache)], check=True, capture_output=True, timeout=300)
    return paths


def make_runner(path: Path, body: str) -> Path:
    path.write_text(body)
    path.chmod(0o755)
    return path


@pytest.fixture(scope="session")
def host_runner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    script = (f"#!{sys.executable}\nimport runpy, sys\nsys.argv[0] = {str(HOST_RUNNER)!r}\n"
              "runpy.run_path(sys.argv[0], run_name='__main__')\n")
    return make_runner(tmp_path_factory.mktemp("runner") / "benchmark_model", script)


@pytest.fixture(scope="session")
def litert_runner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("litert")
    script = (f"#!{sys.executable}\nimport os, runpy, sys\nos.environ['MOBILEDEPLOY_STANDIN'] = 'litert'\n"
              f"sys.argv[0] = {str(HOST_RUNNER)!r}\nrunpy.run_path(sys.argv[0], run_name='__main__')\n")
    (folder / "libLiteRtClGlAccelerator.so").write_bytes(b"\x7fELF stand-in GPU accelerator library\n")
    return make_runner(folder / "benchmark_model", script)


class BinariesServer:
    """LiteRT's binaries bucket on 127.0.0.1: serves `root`, logs every path asked for."""

    def __init__(self, root: Path):
        import functools
        import http.server
        import threading

        self.root, self.requests = root, []
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                server.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def binaries_server(tmp_path: Path, litert_runner: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[BinariesServer]:
    import shutil
    from importlib import metadata

    folder = tmp_path / "bucket" / metadata.version("ai-edge-litert") / "android_arm64"
    folder.mkdir(parents=True)
    for name in ("benchmark_model", "libLiteRtClGlAccelerator.so"):
        shutil.copy(litert_runner.parent / name, folder / name)
    server = BinariesServer(tmp_path / "bucket")
    monkeypatch.setenv("MOBILEDEPLOY_BINARIES_URL", server.url)
    monkeypatch.setenv("MOBILEDEPLOY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("MOBILEDEPLOY_BENCHMARK_MODEL", raising=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def failing_runner(tmp_path_factory: pytest.TempPathFactory) -> Path:
    script = "#!/bin/sh\necho 'STARTING!'\necho 'ERROR: Could not allocate tensors' >&2\necho 'Benchmarking failed.'\nexit 3\n"
    return make_runner(tmp_path_factory.mktemp("failing") / "benchmark_model", script)


@pytest.fixture
def results_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "results.db"
    monkeypatch.setenv("MOBILEDEPLOY_DB", str(path))
    yield path
