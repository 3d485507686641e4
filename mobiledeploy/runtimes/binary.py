"""Which `benchmark_model` binary to push to a phone: the one given, or the one in the cache."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import RunnerError

__all__ = ["find_benchmark_binary", "benchmark_cache_path", "BENCHMARK_MODEL_HINT", "NIGHTLY_URL"]

NIGHTLY_URL = ("https://storage.googleapis.com/tensorflow-nightly-public/prod/tensorflow/release/lite/tools/"
               "nightly/latest/android_aarch64_benchmark_model")
BENCHMARK_MODEL_HINT = (
    "no benchmark_model binary for the phone: pass --benchmark-binary PATH, set MOBILEDEPLOY_BENCHMARK_MODEL, "
    "or put it at {cache}; get TensorFlow's prebuilt nightly benchmark tool ({url}) or build it with "
    "`bazel build -c opt --config=android_arm64 //tensorflow/lite/tools/benchmark:benchmark_model`"
)


def benchmark_cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "mobiledeploy" / "benchmark_model"


def find_benchmark_binary(explicit: str | os.PathLike | None = None) -> Path:
    """The arm64 `benchmark_model` to push: `explicit`, $MOBILEDEPLOY_BENCHMARK_MODEL, or the cache.

    The cache path may be the binary itself or a folder holding `benchmark_model`.
    """
    for source, value in (("--benchmark-binary", explicit), ("MOBILEDEPLOY_BENCHMARK_MODEL",
                                                             os.environ.get("MOBILEDEPLOY_BENCHMARK_MODEL"))):
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise RunnerError(f"{source} {path} is not a file")
            return path
    cache = benchmark_cache_path()
    for path in (cache, cache / "benchmark_model"):
        if path.is_file():
            return path
    raise RunnerError(BENCHMARK_MODEL_HINT.format(cache=cache, url=NIGHTLY_URL))
