"""The toolkit's own errors. Core code raises these; only the CLI turns them into messages."""

from __future__ import annotations


class MobiledeployError(Exception):
    """Base of every error the toolkit raises on purpose. `exit_code` is what the CLI returns; `kind` is
    what a failed run records (`records.ErrorKind`): run (this run only), device (no later run on the
    device can succeed), setup (something to install or pass first; also ends the device's runs)."""

    exit_code = 2
    kind = "run"


class ConfigError(MobiledeployError, ValueError):
    """A model name or configuration that does not exist (unknown arch, g=5, width 0.3x...)."""


class WeightsError(MobiledeployError):
    """A user's weights file cannot be read or does not fit the model."""


class ExportError(MobiledeployError):
    """A conversion step failed."""


class ParityError(ExportError):
    """A converted model does not compute the same function as its reference."""


class DeviceError(MobiledeployError):
    """A device cannot be reached or used."""


class SetupError(MobiledeployError):
    """The runs stopped on a setup step the user must take (pass a file, run a setup command): exit 2."""

    kind = "setup"


class AdbMissingError(DeviceError):
    """The adb client is not installed."""

    kind = "device"


class DeviceNotFoundError(DeviceError):
    """The serial is not among the devices adb sees."""

    kind = "device"


class DeviceGoneError(DeviceError):
    """The device disappeared while in use."""

    kind = "device"


class RemoteDiskFullError(DeviceError):
    """The device has no space left for the files to push."""


class RunnerError(MobiledeployError):
    """The benchmark runner failed or printed something that cannot be parsed."""


class ResultsError(MobiledeployError):
    """The results store or a results/baseline file is unreadable or of an unknown schema."""


class BinaryUnavailableError(RunnerError):
    """No benchmark binary for the phone and none could be downloaded: pass one (exit 2, a setup step)."""

    exit_code = 2
    kind = "setup"


class FarmError(MobiledeployError):
    """A device farm (DeviceFarmer/STF) does not answer, or not as its API says: exit 2."""


class FarmAuthError(FarmError):
    """The farm refused the access token (401): exit 2. The message never holds the token."""


class PhoneUnavailableError(DeviceError):
    """A farm's phone is in use, unknown or not answering (403, 404, 504): it is skipped."""

    kind = "device"


class NoPhoneError(DeviceError):
    """No phone of a lab (several phones, a farm's) could be reserved or reached: exit 1, as a failed run, since
    nothing was timed. The message is one line."""

    exit_code = 1
