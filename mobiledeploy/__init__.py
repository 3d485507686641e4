"""mobiledeploy: efficient CNNs from a PyTorch reference to ARM phones, measured on the device."""

import os

__version__ = "0.1.0"

# The onnxruntime wheel carries Microsoft's 1DS telemetry: `import onnxruntime` starts a worker thread, writes
# ~/.cache/Microsoft/DeveloperTools/.onnxruntime/ (a SQLite store shared by every process) and later tries to upload
# to mobile.events.data.microsoft.com. That is network use this toolkit promises not to make, and threads and disk
# writes beside a timed run. ORT_DISABLE_TELEMETRY=1 turns it off (measured: no thread, no file); set before any
# onnxruntime import, which always comes after this package's. A user's own setting wins.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
