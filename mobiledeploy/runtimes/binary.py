"""Which `benchmark_model` binary to push to a phone: the one given, the one in the cache, or LiteRT's
official build for the phone's ABI, downloaded once and pinned to the installed ai-edge-litert version.

LiteRT publishes `{BASE}/{VERSION}/android_arm64/benchmark_model` and the GPU accelerator beside it
(`libLiteRtClGlAccelerator.so`), BASE = https://storage.googleapis.com/litert/binaries (LiteRT CLI,
`litert_cli/core/constants.py`). $MOBILEDEPLOY_BINARIES_URL replaces BASE (a mirror, or the tests'
loopback server). Downloads land in `cache_dir()/<version>/<abi>/` through `write_atomic`.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import BinaryUnavailableError, RunnerError
from ..files import cache_dir, write_atomic

__all__ = ["find_benchmark_binary", "configured_binary", "benchmark_cache_path", "official_binary", "official_url", "litert_version",
           "BENCHMARK_MODEL_HINT", "NIGHTLY_URL", "BINARIES_URL", "GPU_LIBRARY", "ABI_DIRS"]

BINARIES_URL = "https://storage.googleapis.com/litert/binaries"
GPU_LIBRARY = "libLiteRtClGlAccelerator.so"
#: Android ABI → the folder LiteRT publishes its build under (arm64 is the only one published)
ABI_DIRS = {"arm64-v8a": "android_arm64"}

NIGHTLY_URL = ("https://storage.googleapis.com/tensorflow-nightly-public/prod/tensorflow/release/lite/tools/"
               "nightly/latest/android_aarch64_benchmark_model")
BENCHMARK_MODEL_HINT = (
    "no benchmark_model binary for the phone: pass --benchmark-binary PATH, set MOBILEDEPLOY_BENCHMARK_MODEL, "
    "or put it at {cache}; get LiteRT's ({litert}/<version>/android_arm64/benchmark_model), TensorFlow's prebuilt "
    "nightly benchmark tool ({url}) or build it with "
    "`bazel build -c opt --config=android_arm64 //tensorflow/lite/tools/benchmark:benchmark_model`"
)


def benchmark_cache_path() -> Path:
    """Where a binary of the user's own may be put once: cache_dir()/benchmark_model (a file or a folder)."""
    return cache_dir() / "benchmark_model"


def find_benchmark_binary(explicit: str | os.PathLike | None = None) -> Path:
    """The arm64 `benchmark_model` to push: `explicit`, $MOBILEDEPLOY_BENCHMARK_MODEL, or the cache.

    The cache path may be the binary itself or a folder holding `benchmark_model`.
    """
    path = configured_binary(explicit)
    if path is None:
        raise RunnerError(BENCHMARK_MODEL_HINT.format(cache=benchmark_cache_path(), url=NIGHTLY_URL, litert=BINARIES_URL))
    return path


def configured_binary(explicit: str | os.PathLike | None = None) -> Path | None:
    """The binary the user pointed to (option, environment, or the cache path), None when none is."""
    for source, value in (("--benchmark-binary", explicit), ("MOBILEDEPLOY_BENCHMARK_MODEL",
                                                             os.environ.get("MOBILEDEPLOY_BENCHMARK_MODEL"))):
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise RunnerError(f"{source} {path} is not a file")
            return path
    cache = benchmark_cache_path()
    return next((path for path in (cache, cache / "benchmark_model") if path.is_file()), None)


def litert_version() -> str:
    """The installed ai-edge-litert version: the official binary is pinned to it."""
    from importlib import metadata

    try:
        return metadata.version("ai-edge-litert")
    except metadata.PackageNotFoundError:
        raise BinaryUnavailableError("ai-edge-litert is not installed, so no official benchmark_model version to "
                                     "pin: pass --benchmark-binary PATH") from None


def official_url(version: str, abi: str, name: str = "benchmark_model") -> str:
    base = (os.environ.get("MOBILEDEPLOY_BINARIES_URL") or BINARIES_URL).rstrip("/")
    return f"{base}/{version}/{ABI_DIRS[abi]}/{name}"


def official_binary(abi: str | None, name: str = "benchmark_model") -> tuple[Path, str]:
    """(the cached file, its URL) of LiteRT's build of `name` for `abi`, downloaded on first use."""
    if abi is None:
        raise RunnerError(BENCHMARK_MODEL_HINT.format(cache=benchmark_cache_path(), url=NIGHTLY_URL, litert=BINARIES_URL)
                          + " (the phone did not report its ABI, so none was downloaded)")
    if abi not in ABI_DIRS:
        raise BinaryUnavailableError(f"LiteRT publishes benchmark_model for {', '.join(ABI_DIRS)} only and this phone "
                                     f"is {abi}: pass --benchmark-binary PATH (a build for {abi})")
    version = litert_version()
    url = official_url(version, abi, name)
    path = cache_dir() / version / abi / name
    if not path.is_file():
        write_atomic(path, _download(url))
    return path, url


def _download(url: str) -> bytes:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        reason = f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = " ".join(str(getattr(exc, "reason", exc)).split())
    raise BinaryUnavailableError(f"cannot download {url} ({reason}): pass --benchmark-binary PATH "
                                 "(that file, fetched when online, or a build of your own)")
