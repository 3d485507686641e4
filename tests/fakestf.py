"""A fake DeviceFarmer (STF) farm on 127.0.0.1 for tests: the REST API of `lib/units/api/swagger/api_v1.yaml`
(github.com/DeviceFarmer/stf), handing out device-side adb servers of `tests/adbd.py` as its phones.

Spoken as the real one does (`lib/units/api/controllers/user.js`, `helpers/securityHandlers.js`):
- every call needs `Authorization: Bearer TOKEN`; anything else is 401 {"success": false, "description": ...}
- GET /api/v1/devices, GET /api/v1/user/devices → {success, description, devices: [...]}
- POST /api/v1/user/devices {serial, timeout}: 404 unknown, 403 "Device is being used or not available"
  (owned, or not present/ready), 504 "Device is not responding" (a phone in `not_responding`)
- POST/DELETE /api/v1/user/devices/{serial}/remoteConnect: 403 unless the user holds it; POST →
  {remoteConnectUrl: "127.0.0.1:PORT"} and the phone's adbd starts listening; DELETE stops it (the provider
  closes its port, so whatever still runs on it fails)
- DELETE /api/v1/user/devices/{serial}: 403 unless the user holds it

`lose_on[serial] = (pattern, after)` makes a phone vanish when a shell command holding `pattern` has run
`after` seconds (tests/adbd.py `drop_on`). `FakeStf.calls` logs (method, path, json body or None) in order; `held()` is what the user has reserved now.
"""

from __future__ import annotations

import http.server
import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from tests.adbd import FakeAdbd

__all__ = ["FakeStf", "FarmPhoneSpec", "USER"]

USER = {"email": "tester@example.org", "name": "tester", "group": "default"}


@dataclass
class FarmPhoneSpec:
    serial: str
    model: str
    cpu_platform: str
    sdk: str
    manufacturer: str = "Google"
    abi: str = "arm64-v8a"
    owner: dict[str, Any] | None = None  # someone else's reservation: listed, not free
    fields: dict[str, Any] = field(default_factory=dict)


class FakeStf:
    """The farm: an HTTP server in a thread plus one FakeAdbd per phone (listening only while remoteConnected)."""

    def __init__(self, root: Path, phones: Iterable[FarmPhoneSpec], token: str):
        self.token = token
        self.calls: list[tuple[str, str, Any]] = []
        self.refused: list[str] = []  # Authorization headers refused
        self.not_responding: set[str] = set()
        self.lose_on: dict[str, tuple[str, float]] = {}  # serial → (shell pattern, seconds): the phone drops then
        self.phones: dict[str, dict[str, Any]] = {}
        self.adbd: dict[str, FakeAdbd] = {}
        self._lock = threading.Lock()
        for spec in phones:
            dev = FakeAdbd(root / spec.serial, props={
                "ro.product.model": spec.model, "ro.product.manufacturer": spec.manufacturer,
                "ro.board.platform": spec.cpu_platform, "ro.build.version.sdk": spec.sdk,
                "ro.product.cpu.abi": spec.abi}).start()
            dev.drop_now()  # the provider opens the port on remoteConnect only
            self.adbd[spec.serial] = dev
            self.phones[spec.serial] = {
                "serial": spec.serial, "present": True, "ready": True, "using": False, "owner": spec.owner,
                "model": spec.model, "manufacturer": spec.manufacturer, "sdk": spec.sdk, "abi": spec.abi,
                "product": spec.model.lower().replace(" ", "_"), "cpuPlatform": spec.cpu_platform,
                "version": "14", "remoteConnect": False, "remoteConnectUrl": None, **spec.fields}
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def uri(self, query: str = "") -> str:
        return f"stf:{self.url}/" + (f"?{query}" if query else "")

    def held(self) -> list[str]:
        with self._lock:
            return sorted(s for s, d in self.phones.items() if d["owner"] == USER)

    def address(self, serial: str) -> str:
        return self.adbd[serial].serial

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        for dev in self.adbd.values():
            dev.stop()

    # ------------------------------------------------------------------ the API
    def answer(self, method: str, path: str, body: Any) -> tuple[int, dict[str, Any]]:
        parts = path.split("?")[0].rstrip("/").split("/")
        if parts[:3] != ["", "api", "v1"]:
            return 404, {"success": False, "description": "Not Found"}
        route = parts[3:]
        with self._lock:
            if route == ["devices"] and method == "GET":
                return 200, {"success": True, "description": "Devices Information", "devices": self._listing()}
            if route == ["user", "devices"] and method == "GET":
                mine = [d for d in self._listing() if d["using"]]
                return 200, {"success": True, "description": "Controlled devices information", "devices": mine}
            if route == ["user", "devices"] and method == "POST":
                return self._reserve(str((body or {}).get("serial")), (body or {}).get("timeout"))
            if len(route) >= 3 and route[:2] == ["user", "devices"]:
                return self._on_phone(method, route[2], route[3:])
        return 404, {"success": False, "description": "Not Found"}

    def _listing(self) -> list[dict[str, Any]]:
        return [{**d, "using": d["owner"] == USER} for d in self.phones.values()]

    def _reserve(self, serial: str, timeout_ms: Any) -> tuple[int, dict[str, Any]]:
        phone = self.phones.get(serial)
        if phone is None:
            return 404, {"success": False, "description": "Device not found"}
        if phone["owner"] or not (phone["present"] and phone["ready"]):
            return 403, {"success": False, "description": "Device is being used or not available"}
        if serial in self.not_responding:
            return 504, {"success": False, "description": "Device is not responding"}
        phone["owner"], phone["reserve_timeout_ms"] = USER, timeout_ms
        return 200, {"success": True, "description": "Device successfully added"}

    def _on_phone(self, method: str, serial: str, rest: list[str]) -> tuple[int, dict[str, Any]]:
        phone = self.phones.get(serial)
        if phone is None:
            return 404, {"success": False, "description": "Device not found"}
        if phone["owner"] != USER:
            return 403, {"success": False, "description": "Device is not owned by you or is not available"}
        dev = self.adbd[serial]
        if rest == ["remoteConnect"] and method == "POST":
            dev.restore()  # (which clears drop patterns: those of `lose_on` are set after it)
            if serial in self.lose_on:
                dev.drop_on(*self.lose_on[serial])
            phone.update(remoteConnect=True, remoteConnectUrl=dev.serial)
            return 200, {"success": True, "description": "Remote connection is enabled", "remoteConnectUrl": dev.serial}
        if rest == ["remoteConnect"] and method == "DELETE":
            dev.drop_now()
            phone.update(remoteConnect=False, remoteConnectUrl=None)
            return 200, {"success": True, "description": "Device remote disconnected successfully"}
        if rest == [] and method == "DELETE":
            if phone["remoteConnect"]:
                dev.drop_now()
            phone.update(owner=None, remoteConnect=False, remoteConnectUrl=None)
            return 200, {"success": True, "description": "Device successfully removed"}
        return 404, {"success": False, "description": "Not Found"}

    def _handler(self) -> type:
        farm = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                body = json.loads(raw) if raw else None
                farm.calls.append((self.command, self.path, body))
                if self.headers.get("Authorization") != f"Bearer {farm.token}":
                    farm.refused.append(str(self.headers.get("Authorization")))
                    code, answer = 401, {"success": False, "description": "Bad Credentials"}
                else:
                    code, answer = farm.answer(self.command, self.path, body)
                data = json.dumps(answer).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_DELETE = _serve

            def log_message(self, *args: object) -> None:
                pass

        return Handler
