"""The `mobiledeploy` command. Each verb lives in its own module; heavy imports stay inside commands."""

from __future__ import annotations

import sys

from .app import app, main  # noqa: F401

from . import info_cmd  # noqa: F401,E402  (registers commands)
from . import export_cmd  # noqa: F401,E402
from . import bench_cmd  # noqa: F401,E402
from . import results_cmd  # noqa: F401,E402
from . import gate_cmd  # noqa: F401,E402
from . import compare_cmd, guidelines_cmd, profile_cmd  # noqa: F401,E402  (theory vs measurement)
from . import qemu_cmd  # noqa: F401,E402  (the emulated Arm64 environment)
from . import devices_cmd  # noqa: F401,E402  (the phones a farm or the adb server offers)
from . import accuracy_cmd  # noqa: F401,E402  (accuracy on labelled images)
from . import calibrate_cmd  # noqa: F401,E402  (phone profiles fitted to your phone)

__all__ = ["app", "main"]

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
