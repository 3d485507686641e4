"""`stf:URL`: phones of a DeviceFarmer (STF) farm, reserved, handed to the adb transport, always released.

A farm is a *source* of adb devices, not a transport: `Farm.reserve()` is a context manager that reserves the
phones matching a query, asks the farm for each one's `adb connect` address, yields them (their URIs are
`adb:HOST:PORT`, timed by `devices.adb`), and releases every one it touched on the way out — after success, an
error, Ctrl-C or SIGTERM (the signals are held back while it releases).

The REST API spoken here is DeviceFarmer's, exactly as `lib/units/api/swagger/api_v1.yaml` (v2.4.1,
github.com/DeviceFarmer/stf) and `lib/units/api/controllers/user.js` define it:
- GET  /api/v1/devices                          → {success, devices: [{serial, present, ready, using, owner,
                                                   model, manufacturer, sdk, abi, product, cpuPlatform, …}]}
- POST /api/v1/user/devices {serial, timeout}   → 200; 403 "Device is being used or not available";
                                                   504 "Device is not responding" (timeout: idle ms before the
                                                   farm takes the phone back)
- POST /api/v1/user/devices/{serial}/remoteConnect → {remoteConnectUrl: "HOST:PORT"}
- DELETE /api/v1/user/devices/{serial}/remoteConnect, DELETE /api/v1/user/devices/{serial}
- every call: `Authorization: Bearer TOKEN` (lib/units/api/helpers/securityHandlers.js; 401 when refused).
A phone is free when `present and ready and not using and not owner` (lib/util/deviceutil.js `isAddable`).

The token comes from $STF_TOKEN only; it is sent in that header and nowhere else: never printed, never put in
an error, a URI or the results store.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import re
import signal
import threading
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

from ..errors import ConfigError, DeviceNotFoundError, FarmAuthError, FarmError, PhoneUnavailableError

__all__ = ["FarmQuery", "FarmPhone", "StfClient", "Farm", "parse_farm_uri", "farm_token", "matches",
           "FILTER_HELP", "DEFAULT_RESERVE_S"]

TOKEN_ENV = "STF_TOKEN"
DEFAULT_RESERVE_S = 900.0   # the farm takes a phone back after this long idle (STF's `timeout`, in ms on the wire)
ALIASES = {"soc": "cpuPlatform", "name": "marketName", "android": "version"}
_OPTIONS = ("count", "timeout")
_COMPARISON = re.compile(r"^(>=|<=|>|<|=|!=)\s*(-?\d+(?:\.\d+)?)$")
FILTER_HELP = ("stf:URL[?FIELD=VALUE&…]: FIELD is a device field of the farm (model, manufacturer, abi, sdk, product, "
               "serial, soc = cpuPlatform, …); VALUE a glob (Pixel*), alternatives with ',' (abi=arm64-v8a,armeabi-v7a) "
               "or a number comparison (sdk=>=30); count=N reserves at most N phones, timeout=SECONDS the farm's idle "
               "timeout (default 900)")


@dataclass(frozen=True)
class FarmQuery:
    """What `stf:URL?…` asks for: the farm's base URL (no credentials, no query), field filters, options."""

    url: str
    filters: tuple[tuple[str, str], ...] = ()
    count: int | None = None
    reserve_s: float = DEFAULT_RESERVE_S

    def describe(self) -> str:
        return self.url + ("?" + "&".join(f"{k}={v}" for k, v in self.filters) if self.filters else "")


@dataclass
class FarmPhone:
    """One phone a farm lists; `address` (HOST:PORT for `adb connect`) once remoteConnect gave it."""

    serial: str
    fields: dict[str, Any] = field(default_factory=dict)
    farm: str = ""
    address: str | None = None

    @property
    def free(self) -> bool:
        f = self.fields
        return bool(f.get("present") and f.get("ready") and not f.get("using") and not f.get("owner"))

    @property
    def uri(self) -> str:
        return f"adb:{self.address}"

    def identity(self) -> dict[str, Any]:
        """What each run on this phone records about it (no token, no owner's e-mail)."""
        f = self.fields
        return {"label": self.serial, "serial": self.serial, "farm": self.farm, "address": self.address,
                "model": f.get("model"), "manufacturer": f.get("manufacturer"), "soc": f.get("cpuPlatform"),
                "abi": f.get("abi"), "sdk": f.get("sdk")}


def parse_farm_uri(uri: str) -> FarmQuery:
    """'stf:http://farm:7100/?model=Pixel*&sdk=>=30&count=3' → FarmQuery; ConfigError for anything else."""
    text = uri.strip()
    if not text.startswith("stf:"):
        raise ConfigError(f"{uri!r} is not a farm (stf:http://HOST:PORT/?FILTERS)")
    parts = urllib.parse.urlsplit(text[4:])
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"stf: needs the farm's http(s) URL, e.g. stf:https://farm.example/?abi=arm64-v8a "
                          f"(got {_without_credentials(text[4:])!r})")
    netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    url = f"{parts.scheme}://{netloc}{parts.path.rstrip('/')}"
    filters, options = [], {}
    for key, value in urllib.parse.parse_qsl(parts.query, keep_blank_values=True):
        if key in _OPTIONS:
            options[key] = _positive_number(key, value)
        else:
            for alternative in value.split(","):
                _check_value(key, alternative)
            filters.append((ALIASES.get(key, key), value))
    count = options.get("count")
    return FarmQuery(url, tuple(filters), None if count is None else int(count),
                     float(options.get("timeout", DEFAULT_RESERVE_S)))


def _without_credentials(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return url.replace(f"{parts.username or ''}:{parts.password}@", "") if parts.password else url


def _positive_number(key: str, value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = 0.0
    if number <= 0 or (key == "count" and number != int(number)):
        raise ConfigError(f"stf: {key}={value!r} must be a positive {'whole ' if key == 'count' else ''}number")
    return number


def _check_value(key: str, value: str) -> None:
    if not key or not value.strip():
        raise ConfigError(f"stf: filter {key or '?'}={value!r} needs a field and a value ({FILTER_HELP})")
    if value.strip()[0] in "<>!" and not _COMPARISON.match(value.strip()):
        raise ConfigError(f"stf: filter {key}={value!r}: a comparison is >=N, <=N, >N, <N or !=N")


def matches(fields: dict[str, Any], filters: tuple[tuple[str, str], ...]) -> bool:
    """Every filter holds: one of its ','-separated alternatives matches the field (glob, case-insensitive,
    or a number comparison such as '>=30'); a field the device does not have matches nothing."""
    return all(any(_matches_one(fields.get(key), alt.strip()) for alt in value.split(",")) for key, value in filters)


def _matches_one(actual: Any, wanted: str) -> bool:
    if actual is None:
        return False
    compared = _COMPARISON.match(wanted)
    if compared:
        try:
            number = float(actual)
        except (TypeError, ValueError):
            return False
        op, limit = compared[1], float(compared[2])
        return {">=": number >= limit, "<=": number <= limit, ">": number > limit, "<": number < limit,
                "=": number == limit, "!=": number != limit}[op]
    return fnmatch.fnmatchcase(str(actual).lower(), wanted.lower())


def farm_token(env: dict[str, str] | None = None) -> str:
    """The farm's access token from $STF_TOKEN (STF UI: Settings → Keys → Access Tokens)."""
    token = (env if env is not None else os.environ).get(TOKEN_ENV, "").strip()
    if not token:
        raise ConfigError(f"a farm needs an access token in ${TOKEN_ENV} (STF: Settings → Keys → Access Tokens → "
                          "Generate New Token)")
    return token


class StfClient:
    """DeviceFarmer's REST API (see the module docstring); every call bounded by `timeout_s`."""

    def __init__(self, url: str, token: str, timeout_s: float = 15.0):
        self.url = url
        self._token = token
        self.timeout_s = timeout_s

    def __repr__(self) -> str:  # the token stays out of every repr and traceback
        return f"StfClient({self.url!r})"

    def devices(self) -> list[dict[str, Any]]:
        return list(self.call("GET", "/devices").get("devices") or [])

    def reserve(self, serial: str, reserve_s: float) -> None:
        self.call("POST", "/user/devices", {"serial": serial, "timeout": int(reserve_s * 1000)}, serial=serial)

    def remote_connect(self, serial: str) -> str:
        answer = self.call("POST", f"/user/devices/{_quote(serial)}/remoteConnect", serial=serial)
        address = str(answer.get("remoteConnectUrl") or "").strip()
        if not re.fullmatch(r"[\w.\-\[\]:]+:\d+", address):
            raise PhoneUnavailableError(f"{serial}: the farm gave no adb address ({address or 'none'})")
        return address

    def remote_disconnect(self, serial: str) -> None:
        self.call("DELETE", f"/user/devices/{_quote(serial)}/remoteConnect", serial=serial)

    def release(self, serial: str) -> None:
        self.call("DELETE", f"/user/devices/{_quote(serial)}", serial=serial)

    def call(self, method: str, path: str, body: dict[str, Any] | None = None, *,
             serial: str | None = None) -> dict[str, Any]:
        """One API call → its JSON; FarmError (no answer, or an answer that is not the API's), FarmAuthError (401),
        PhoneUnavailableError (403/404/504 about one phone)."""
        request = urllib.request.Request(
            f"{self.url}/api/v1{path}", method=method, data=None if body is None else json.dumps(body).encode(),
            headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json",
                     **({"Content-Type": "application/json"} if body is not None else {})})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as answer:
                return _json(answer.read(), self.url)
        except urllib.error.HTTPError as exc:
            raise self._refused(exc, method, path, serial) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise FarmError(f"the farm at {self.url} does not answer ({' '.join(str(reason).split())})") from None

    def _refused(self, exc: urllib.error.HTTPError, method: str, path: str, serial: str | None) -> Exception:
        try:
            description = str(json.loads(exc.read() or b"{}").get("description") or exc.reason)
        except (ValueError, AttributeError, OSError):
            description = str(exc.reason)
        if exc.code == 401:
            return FarmAuthError(f"the farm at {self.url} refused the token in ${TOKEN_ENV} (401: {description})")
        if serial is not None and exc.code in (403, 404, 504):
            error = PhoneUnavailableError(f"{serial}: {description} ({exc.code})")
            error.status = exc.code
            return error
        return FarmError(f"the farm at {self.url} answered {method} /api/v1{path} with {exc.code}: {description}")


def _quote(serial: str) -> str:
    return urllib.parse.quote(serial, safe="")


def _json(data: bytes, url: str) -> dict[str, Any]:
    try:
        answer = json.loads(data or b"{}")
    except ValueError:
        raise FarmError(f"{url} did not answer with JSON: is it a DeviceFarmer (STF) farm?") from None
    if not isinstance(answer, dict):
        raise FarmError(f"{url} did not answer like DeviceFarmer's API (a JSON object)")
    return answer


class Farm:
    """A farm query's phones: what it offers (`phones`) and a reservation of the matching free ones (`reserve`).

    `say` receives one line per phone skipped or not released (the CLI prints them as warnings)."""

    def __init__(self, query: FarmQuery, client: StfClient, *, adb_server: str | None = None,
                 say: Callable[[str], None] | None = None):
        self.query, self.client, self.adb_server = query, client, adb_server
        self.notes: list[str] = []
        self._say = say
        self._held: list[FarmPhone] = []
        self._lock = threading.Lock()

    @classmethod
    def open(cls, uri: str, *, adb_server: str | None = None, say: Callable[[str], None] | None = None,
             token: str | None = None) -> "Farm":
        query = parse_farm_uri(uri)
        return cls(query, StfClient(query.url, token or farm_token()), adb_server=adb_server, say=say)

    def note(self, line: str) -> None:
        self.notes.append(line)
        if self._say is not None:
            self._say(line)

    def phones(self) -> list[FarmPhone]:
        """Every phone the farm lists to this user, in its order."""
        return [FarmPhone(str(d.get("serial")), d, self.query.url) for d in self.client.devices() if d.get("serial")]

    def candidates(self) -> list[FarmPhone]:
        """The phones matching the query; DeviceNotFoundError naming the filters when none does."""
        phones = self.phones()
        found = [p for p in phones if matches(p.fields, self.query.filters)]
        if not found:
            raise DeviceNotFoundError(f"no phone of the farm at {self.query.url} matches "
                                      f"{self.query.describe()} (it lists {len(phones)})")
        return found

    @contextlib.contextmanager
    def reserve(self) -> Iterator[list[FarmPhone]]:
        """Reserve the matching free phones (at most `count`), remoteConnect each; yield those reached; release
        every one on the way out, whatever ends the block. DeviceNotFoundError when none could be reserved."""
        try:
            got = self._reserve_all()
            if not got:
                raise DeviceNotFoundError(f"no phone of the farm at {self.query.url} matching "
                                          f"{self.query.describe()} could be reserved: {'; '.join(self.notes)}")
            yield got
        finally:
            self.release_all()

    def _reserve_all(self) -> list[FarmPhone]:
        got: list[FarmPhone] = []
        for phone in self.candidates():
            if self.query.count is not None and len(got) >= self.query.count:
                break
            if not phone.free:
                self.note(f"{phone.serial} skipped: in use or not ready on the farm")
                continue
            with self._lock:
                self._held.append(phone)  # before asking: an interrupt during the call still releases it
            try:
                self.client.reserve(phone.serial, self.query.reserve_s)
            except PhoneUnavailableError as exc:  # in use (403) or not answering (504): not ours
                self._forget(phone)
                self.note(f"{phone.serial} skipped: {' '.join(str(exc).split())}")
                continue
            try:
                phone.address = self.client.remote_connect(phone.serial)
            except PhoneUnavailableError as exc:
                self.note(f"{phone.serial} skipped: {' '.join(str(exc).split())}")
                self.release(phone)
                continue
            got.append(phone)
        return got

    def release_all(self) -> None:
        """Release every phone still held (idempotent; safe from any thread)."""
        with self._lock:
            held, self._held = list(self._held), []
        for phone in held:
            self.release(phone, held=False)

    def release(self, phone: FarmPhone, *, held: bool = True) -> None:
        """adb disconnect, DELETE remoteConnect, DELETE the reservation: each tried, each failure said once.
        SIGINT and SIGTERM wait until it is done (a second Ctrl-C must not leave the phone reserved)."""
        if held:
            self._forget(phone)
        with _signals_held():
            failures = []
            if phone.address:
                self._adb_disconnect(phone.address)
                failures += _attempt(lambda: self.client.remote_disconnect(phone.serial))
            failures += _attempt(lambda: self.client.release(phone.serial))
        if failures:
            self.note(f"{phone.serial} may still be reserved on the farm: {failures[-1]}")

    def _forget(self, phone: FarmPhone) -> None:
        with self._lock:
            self._held = [p for p in self._held if p is not phone]

    def _adb_disconnect(self, address: str) -> None:
        from .adb import AdbDevice

        with contextlib.suppress(Exception):
            AdbDevice(address, adb_server=self.adb_server, call_timeout_s=10.0)._disconnect()


def _attempt(call: Callable[[], None]) -> list[str]:
    """[] when the call went through, or the phone is not ours any more (403/404: the farm took it back);
    else the one-line reason."""
    try:
        call()
    except PhoneUnavailableError as exc:
        return [] if getattr(exc, "status", None) in (403, 404) else [" ".join(str(exc).split())]
    except FarmError as exc:
        return [" ".join(str(exc).split())]
    return []


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back (main thread only) while the block runs; a held one is raised after it."""
    held = {signal.SIGINT, signal.SIGTERM}
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, held)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
