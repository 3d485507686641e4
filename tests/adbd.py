"""A fake *device-side* adb daemon ("fake adbd") for tests.

It listens on ``127.0.0.1:PORT`` and speaks the real adb transport protocol
(CNXN/OPEN/OKAY/WRTE/CLSE, see AOSP ``packages/modules/adb/protocol.txt``), so
the real ``adb`` client/server can ``adb connect 127.0.0.1:PORT`` to it exactly
as to a phone put in ``adb tcpip`` mode.  Everything "on the device" runs in a
sandbox directory on the host.

Implemented services
--------------------
* ``shell,v2[,raw|,pty][,TERM=..]:CMD`` -- shell protocol v2 (separate
  stdout/stderr, stdin forwarding, real exit code).
* ``shell:CMD`` and ``exec:CMD`` -- legacy raw streams (stdout+stderr merged,
  no exit code).
* ``sync:`` -- STAT, STA2, LST2, LIST, LIS2, SEND, RECV, QUIT.

Advertised features: see :data:`DEFAULT_FEATURES`.  No AUTH/STLS: the host's
CNXN is answered with our CNXN immediately.

Sandbox
-------
* Sync paths: every absolute device path is mapped under ``<root>`` (the
  sandbox acts like a chroot; ``..`` cannot climb above it), so
  ``/data/local/tmp/x`` is ``<root>/data/local/tmp/x``.  ``<root>/data/local/tmp``
  is created on start.
* Shell commands: every occurrence of ``/data/local/tmp`` in the command text is
  replaced by ``<root>/data/local/tmp``; the command runs under
  ``/bin/sh -c`` with ``cwd=<root>`` and ``<root>/bin`` first on ``PATH``.
  ``<root>/bin/getprop`` is a shim answering from :attr:`FakeAdbd.props`.
  Paths *printed* by commands are NOT rewritten back (e.g. ``pwd`` or
  ``ls -d /data/local/tmp/*`` print host paths); only the command text is
  rewritten.  Other absolute paths in shell commands (``/sdcard``, ``/proc``...)
  are used as-is on the host.
* ``pty`` shells are emulated with pipes (stderr merged into stdout, no tty,
  no ``\\n`` -> ``\\r\\n`` translation).

Fault injection (thread-safe, may be changed while the server runs)
-------------------------------------------------------------------
* ``disk_quota_bytes`` -- when set, a sync SEND that would make the sandbox's
  file bytes (regular files under ``<root>``, excluding ``bin/``) exceed the
  quota fails with ``FAIL "write failed: No space left on device"`` and the
  partial file is removed.  ``None`` disables it.  Shell commands are not
  limited.
* ``drop_on(pattern, after=0.0)`` -- when a shell command containing
  ``pattern`` starts, every TCP connection is reset (after ``after`` seconds;
  with 0 the command is not run at all) and the listener is closed, so
  reconnects are refused until :meth:`FakeAdbd.restore`.
* ``stop()`` -- the device is gone for good.

Logs: :attr:`FakeAdbd.services` (every service string opened, in order),
:attr:`FakeAdbd.shell_commands` (the command text as sent, before rewriting),
:attr:`FakeAdbd.sync_ops` (``(op, device_path)`` tuples, e.g.
``("SEND", "/data/local/tmp/m.tflite")``).

Run standalone::

    python tests/adbd.py --port 0 --root /tmp/dev   # prints the port
"""

from __future__ import annotations

import argparse
import errno as _errno
import os
import posixpath
import queue
import shlex
import signal
import socket
import stat as _stat
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterable

__all__ = ["FakeAdbd", "DEFAULT_PROPS", "DEFAULT_FEATURES", "DEVICE_TMP"]

# --------------------------------------------------------------------------- constants

A_SYNC = 0x434E5953
A_CNXN = 0x4E584E43
A_OPEN = 0x4E45504F
A_OKAY = 0x59414B4F
A_CLSE = 0x45534C43
A_WRTE = 0x45545257
A_AUTH = 0x48545541
A_STLS = 0x534C5453

A_VERSION = 0x01000001  # skip-checksum capable; we still fill the checksum in
MAX_PAYLOAD = 256 * 1024

_NAMES = {A_SYNC: "SYNC", A_CNXN: "CNXN", A_OPEN: "OPEN", A_OKAY: "OKAY",
          A_CLSE: "CLSE", A_WRTE: "WRTE", A_AUTH: "AUTH", A_STLS: "STLS"}

DEVICE_TMP = "/data/local/tmp"

DEFAULT_PROPS: dict[str, str] = {
    "ro.product.model": "MD-Fake",
    "ro.product.manufacturer": "mobiledeploy",
    "ro.product.name": "md_fake",
    "ro.product.device": "mdfake",
    "ro.board.platform": "fakeboard",
    "ro.product.cpu.abi": "arm64-v8a",
    "ro.build.version.release": "14",
    "ro.build.version.sdk": "34",
}

# Only what is implemented here.  (No "cmd"/"abb": `adb install` is not supported.)
DEFAULT_FEATURES: tuple[str, ...] = (
    "shell_v2", "stat_v2", "ls_v2", "fixed_push_mkdir", "fixed_push_symlink_timestamp",
)

# shell protocol v2 packet ids (shell_protocol.h)
SH_STDIN, SH_STDOUT, SH_STDERR, SH_EXIT, SH_CLOSE_STDIN, SH_WINDOW = 0, 1, 2, 3, 4, 5


def _mkid(s: str) -> int:
    return struct.unpack("<I", s.encode())[0]


ID_STAT = _mkid("STAT")
ID_STA2 = _mkid("STA2")
ID_LST2 = _mkid("LST2")
ID_LIST = _mkid("LIST")
ID_LIS2 = _mkid("LIS2")
ID_DENT = _mkid("DENT")
ID_DNT2 = _mkid("DNT2")
ID_SEND = _mkid("SEND")
ID_RECV = _mkid("RECV")
ID_DONE = _mkid("DONE")
ID_DATA = _mkid("DATA")
ID_OKAY = _mkid("OKAY")
ID_FAIL = _mkid("FAIL")
ID_QUIT = _mkid("QUIT")

SYNC_DATA_MAX = 64 * 1024
_STAT_V2 = struct.Struct("<IIQQIIIIQqqq")  # id error dev ino mode nlink uid gid size atime mtime ctime
_DENT_V2 = struct.Struct("<IIQQIIIIQqqqI")  # ... + namelen

_U32 = 0xFFFFFFFF
_U64 = 0xFFFFFFFFFFFFFFFF


class _Closed(Exception):
    """The adb stream (or the whole connection) went away."""


def _checksum(data: bytes) -> int:
    return sum(data) & _U32


def _strtoul0(text: str) -> int:
    """strtoul(text, nullptr, 0): 0x.. hex, 0.. octal, else decimal."""
    t = text.strip()
    if t.lower().startswith("0x"):
        return int(t[2:], 16)
    if len(t) > 1 and t.startswith("0"):
        return int(t[1:], 8)
    return int(t)


# --------------------------------------------------------------------------- streams


class _Stream:
    """One adb stream (local socket) on a connection."""

    def __init__(self, conn: "_Connection", local_id: int, remote_id: int, service: str):
        self.conn = conn
        self.local_id = local_id
        self.remote_id = remote_id
        self.service = service
        self._inq: "queue.Queue[bytes | None]" = queue.Queue()
        self._can_send = threading.Event()
        self._can_send.set()
        self._wlock = threading.Lock()
        self.remote_closed = False
        self._sent_close = False
        self._rbuf = bytearray()

    # -- called by the connection's reader thread
    def on_okay(self) -> None:
        self._can_send.set()

    def on_data(self, data: bytes) -> None:
        self._inq.put(data)

    def on_close(self) -> None:
        self.remote_closed = True
        self._inq.put(None)
        self._can_send.set()

    # -- used by service threads
    def read(self) -> bytes | None:
        """Next WRTE payload (acknowledged with OKAY), or None at end of stream."""
        data = self._inq.get()
        if data is None:
            self._inq.put(None)  # sticky EOF
            return None
        if not self.remote_closed and not self._sent_close:
            try:
                self.conn.send(A_OKAY, self.local_id, self.remote_id)
            except _Closed:
                pass
        return data

    def read_exact(self, n: int) -> bytes:
        while len(self._rbuf) < n:
            chunk = self.read()
            if chunk is None:
                raise _Closed("stream closed")
            self._rbuf += chunk
        out = bytes(self._rbuf[:n])
        del self._rbuf[:n]
        return out

    def write(self, data: bytes) -> None:
        """Send data, honouring max payload and OKAY flow control."""
        view = memoryview(data)
        with self._wlock:
            while view:
                while not self._can_send.wait(0.25):
                    if self.conn.dead:
                        raise _Closed("connection gone")
                if self.remote_closed or self._sent_close or self.conn.dead:
                    raise _Closed("stream closed")
                self._can_send.clear()
                n = self.conn.max_payload
                self.conn.send(A_WRTE, self.local_id, self.remote_id, bytes(view[:n]))
                view = view[n:]

    def close(self) -> None:
        if self._sent_close:
            return
        self._sent_close = True
        self._inq.put(None)
        self._can_send.set()
        try:
            if not self.conn.dead:
                self.conn.send(A_CLSE, self.local_id, self.remote_id)
        except _Closed:
            pass
        self.conn.forget(self)


# --------------------------------------------------------------------------- connection


class _Connection:
    def __init__(self, server: "FakeAdbd", sock: socket.socket):
        self.server = server
        self.sock = sock
        self.dead = False
        self.max_payload = MAX_PAYLOAD
        self._slock = threading.Lock()
        self._streams: dict[int, _Stream] = {}
        self._next_id = 1
        self._lock = threading.Lock()
        self.procs: set[subprocess.Popen] = set()
        self.thread = threading.Thread(target=self._run, name=f"fake-adbd-conn-{id(self):x}",
                                       daemon=True)

    # -- low level
    def send(self, cmd: int, arg0: int, arg1: int, data: bytes = b"") -> None:
        hdr = struct.pack("<6I", cmd, arg0 & _U32, arg1 & _U32, len(data), _checksum(data),
                          cmd ^ _U32)
        with self._slock:
            if self.dead:
                raise _Closed("connection gone")
            try:
                self.sock.sendall(hdr + data)
            except OSError as e:
                self._mark_dead()
                raise _Closed(str(e)) from e

    def _recv_exact(self, n: int) -> bytes:
        buf = bytearray()
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise _Closed("eof")
            buf += chunk
        return bytes(buf)

    def forget(self, stream: _Stream) -> None:
        with self._lock:
            if self._streams.get(stream.local_id) is stream:
                del self._streams[stream.local_id]

    # -- lifecycle
    def abort(self) -> None:
        """Abruptly reset the TCP connection (RST), like a device vanishing."""
        self._mark_dead()
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    def _mark_dead(self) -> None:
        if self.dead:
            return
        self.dead = True
        with self._lock:
            streams = list(self._streams.values())
            self._streams.clear()
        for s in streams:
            s.on_close()
        for p in list(self.procs):
            _kill_tree(p)

    def _run(self) -> None:
        try:
            while not self.dead:
                hdr = self._recv_exact(24)
                cmd, a0, a1, length, _crc, magic = struct.unpack("<6I", hdr)
                if magic != (cmd ^ _U32) or length > 16 * 1024 * 1024:
                    break
                data = self._recv_exact(length) if length else b""
                self._dispatch(cmd, a0, a1, data)
        except (_Closed, OSError):
            pass
        finally:
            self.abort()
            self.server._forget_conn(self)

    def _dispatch(self, cmd: int, a0: int, a1: int, data: bytes) -> None:
        if cmd == A_CNXN:
            self.max_payload = max(4096, min(MAX_PAYLOAD, a1 or MAX_PAYLOAD))
            self.send(A_CNXN, A_VERSION, MAX_PAYLOAD, self.server.banner().encode())
        elif cmd == A_OPEN:
            service = data.rstrip(b"\0").decode("utf-8", "surrogateescape")
            self._open(a0, service)
        elif cmd == A_OKAY:
            st = self._streams.get(a1)
            if st is not None:
                if st.remote_id == 0:
                    st.remote_id = a0
                st.on_okay()
        elif cmd == A_WRTE:
            st = self._streams.get(a1)
            if st is not None:
                st.on_data(data)
        elif cmd == A_CLSE:
            with self._lock:
                st = self._streams.pop(a1, None)
            if st is not None:
                st.on_close()
        # AUTH / STLS / SYNC: never expected (we never ask for auth); ignore.

    def _open(self, remote_id: int, service: str) -> None:
        self.server._log_service(service)
        if self.server._should_drop_now(service):
            # Vanish before acknowledging the OPEN: the client sees the device go away.
            self.server._trigger_drop()
            raise _Closed("dropped")
        handler = self.server._handler_for(service)
        if handler is None:
            self.send(A_CLSE, 0, remote_id)
            return
        with self._lock:
            local_id = self._next_id
            self._next_id += 1
            st = _Stream(self, local_id, remote_id, service)
            self._streams[local_id] = st
        self.send(A_OKAY, local_id, remote_id)

        def run() -> None:
            try:
                handler(st, service)
            except _Closed:
                pass
            except Exception as e:  # pragma: no cover - debugging aid
                print(f"fake adbd: service {service!r} crashed: {e!r}", file=sys.stderr)
            finally:
                st.close()

        threading.Thread(target=run, name=f"fake-adbd-svc-{local_id}", daemon=True).start()


def _kill_tree(p: subprocess.Popen) -> None:
    if p.poll() is not None:
        return
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except OSError:
        try:
            p.kill()
        except OSError:
            pass


# --------------------------------------------------------------------------- server


_GETPROP_SHIM = r"""#!/bin/sh
# getprop shim installed by tests/adbd.py (fake adbd). Answers from a props file.
props=%(props)s
if [ $# -eq 0 ]; then
  while IFS= read -r line || [ -n "$line" ]; do
    printf '[%%s]: [%%s]\n' "${line%%%%=*}" "${line#*=}"
  done < "$props"
  exit 0
fi
while IFS= read -r line || [ -n "$line" ]; do
  if [ "${line%%%%=*}" = "$1" ]; then
    printf '%%s\n' "${line#*=}"
    exit 0
  fi
done < "$props"
printf '%%s\n' "${2-}"
"""


class FakeAdbd:
    """Device-side adb daemon on 127.0.0.1 backed by a sandbox directory.

    Usage::

        with FakeAdbd(tmp_path / "dev") as dev:
            subprocess.run(["adb", "connect", dev.serial])
            ...
    """

    def __init__(
        self,
        root: str | os.PathLike,
        port: int = 0,
        *,
        props: dict[str, str] | None = None,
        features: Iterable[str] = DEFAULT_FEATURES,
        host: str = "127.0.0.1",
    ):
        if host != "127.0.0.1":
            raise ValueError("fake adbd only binds 127.0.0.1")
        self.root = Path(root).resolve()
        self.host = host
        self._requested_port = port
        self.port: int = 0
        self.features = tuple(features)
        self._props = dict(DEFAULT_PROPS)
        if props:
            self._props.update({str(k): str(v) for k, v in props.items()})

        self._lock = threading.RLock()
        self._listener: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._conns: set[_Connection] = set()
        self._running = False
        self._refusing = False
        self._drop_patterns: list[tuple[str, float]] = []
        self._disk_quota: int | None = None

        self.services: list[str] = []
        self.shell_commands: list[str] = []
        self.sync_ops: list[tuple[str, str]] = []
        self.drops: int = 0
        #: set by the ``fake_device`` fixture: ``adb(*args, **kw)`` runs ``adb -s SERIAL ...``
        self.adb: Callable[..., subprocess.CompletedProcess] | None = None
        #: device paths (prefixes) a sync SEND may write to; anything else fails with
        #: "Permission denied" like the read-only system partitions of a phone.
        self.writable_prefixes: tuple[str, ...] = (DEVICE_TMP, "/sdcard", "/storage/emulated/0")

    # ------------------------------------------------------------------ public API
    @property
    def serial(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def device_tmp(self) -> Path:
        """Host directory backing /data/local/tmp."""
        return self.root / "data" / "local" / "tmp"

    @property
    def bin_dir(self) -> Path:
        return self.root / "bin"

    @property
    def props(self) -> dict[str, str]:
        with self._lock:
            return dict(self._props)

    def set_prop(self, name: str, value: str | None) -> None:
        """Set (or with None delete) a property served by the getprop shim."""
        with self._lock:
            if value is None:
                self._props.pop(name, None)
            else:
                self._props[name] = str(value)
            self._write_props()

    @property
    def disk_quota_bytes(self) -> int | None:
        return self._disk_quota

    @disk_quota_bytes.setter
    def disk_quota_bytes(self, value: int | None) -> None:
        with self._lock:
            self._disk_quota = None if value is None else int(value)

    def drop_on(self, pattern: str, after: float = 0.0) -> None:
        """Vanish (reset all connections, stop listening) when a shell command
        containing ``pattern`` starts.  ``after`` > 0 lets it run that long first."""
        with self._lock:
            self._drop_patterns.append((pattern, float(after)))

    def drop_now(self) -> None:
        """Vanish immediately (like drop_on firing); undo with restore()."""
        self._trigger_drop()

    def restore(self) -> None:
        """Clear drop patterns and accept connections again (same port)."""
        with self._lock:
            self._drop_patterns.clear()
            if self._running and self._refusing:
                self._refusing = False
                self._listen(self.port)

    @property
    def is_listening(self) -> bool:
        return self._running and not self._refusing

    def host_path(self, device_path: str) -> Path:
        """Host path backing ``device_path`` (sync mapping)."""
        return Path(self._map(device_path))

    def install_tool(self, name: str, script: str) -> Path:
        """Put an executable script into ``<root>/bin`` (first on the shell's PATH)."""
        p = self.bin_dir / name
        p.write_text(script)
        p.chmod(0o755)
        return p

    def clear_log(self) -> None:
        with self._lock:
            self.services.clear()
            self.shell_commands.clear()
            self.sync_ops.clear()

    def start(self) -> "FakeAdbd":
        with self._lock:
            if self._running:
                return self
            self.device_tmp.mkdir(parents=True, exist_ok=True)
            self.bin_dir.mkdir(parents=True, exist_ok=True)
            (self.root / ".fakeadbd").mkdir(parents=True, exist_ok=True)
            self._write_props()
            shim = _GETPROP_SHIM % {"props": shlex.quote(str(self.root / ".fakeadbd" / "props"))}
            self.install_tool("getprop", shim)
            self._running = True
            self._refusing = False
            self._listen(self._requested_port)
        return self

    def stop(self) -> None:
        """Shut down the listener and every connection (device gone)."""
        with self._lock:
            self._running = False
            self._close_listener()
            conns = list(self._conns)
        for c in conns:
            c.abort()
        for c in conns:
            c.thread.join(timeout=2)
        t = self._accept_thread
        if t is not None and t is not threading.current_thread():
            t.join(timeout=2)

    def __enter__(self) -> "FakeAdbd":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def banner(self) -> str:
        p = self.props
        return ("device::"
                f"ro.product.name={p.get('ro.product.name', '')};"
                f"ro.product.model={p.get('ro.product.model', '')};"
                f"ro.product.device={p.get('ro.product.device', '')};"
                f"features={','.join(self.features)}")

    # ------------------------------------------------------------------ internals
    def _write_props(self) -> None:
        d = self.root / ".fakeadbd"
        if not d.is_dir():
            return
        lines = "".join(f"{k}={str(v).replace(chr(10), ' ')}\n" for k, v in sorted(self._props.items()))
        tmp = d / "props.tmp"
        tmp.write_text(lines)
        os.replace(tmp, d / "props")

    def _listen(self, port: int) -> None:
        old = self._accept_thread
        if old is not None and old is not threading.current_thread():
            old.join(timeout=2)  # the old listening socket is fully released once it exits
        deadline = time.monotonic() + 5
        while True:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((self.host, port))
                break
            except OSError:
                s.close()
                if port == 0 or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        s.listen(16)
        s.settimeout(0.1)
        self.port = s.getsockname()[1]
        self._listener = s
        t = threading.Thread(target=self._accept_loop, args=(s,), name=f"fake-adbd-accept-{self.port}",
                             daemon=True)
        self._accept_thread = t
        t.start()

    def _close_listener(self) -> None:
        s, self._listener = self._listener, None
        if s is not None:
            try:
                s.shutdown(socket.SHUT_RDWR)  # stop listening *now* (wakes accept on Linux)
            except OSError:
                pass
            try:
                s.close()
            except OSError:
                pass

    def _accept_loop(self, lsock: socket.socket) -> None:
        while True:
            with self._lock:
                if self._listener is not lsock:
                    return
            try:
                sock, _addr = lsock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                if self._listener is not lsock:
                    sock.close()
                    return
                sock.settimeout(None)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                conn = _Connection(self, sock)
                self._conns.add(conn)
            conn.thread.start()

    def _forget_conn(self, conn: _Connection) -> None:
        with self._lock:
            self._conns.discard(conn)

    def _trigger_drop(self) -> None:
        with self._lock:
            self.drops += 1
            self._refusing = True
            self._close_listener()
            conns = list(self._conns)
        for c in conns:
            c.abort()

    def _log_service(self, service: str) -> None:
        with self._lock:
            self.services.append(service)

    @staticmethod
    def _shell_command_of(service: str) -> str | None:
        if service.startswith(("shell:", "shell,", "exec:")):
            return service.partition(":")[2]
        return None

    def _should_drop_now(self, service: str) -> bool:
        cmd = self._shell_command_of(service)
        if cmd is None:
            return False
        with self._lock:
            if any(pat in cmd and after <= 0 for pat, after in self._drop_patterns):
                self.shell_commands.append(cmd)
                return True
        return False

    def _handler_for(self, service: str) -> Callable[[_Stream, str], None] | None:
        if service.startswith("shell:") or service.startswith("shell,"):
            return self._svc_shell
        if service.startswith("exec:"):
            return self._svc_shell
        if service == "sync:":
            return self._svc_sync
        return None

    # -- path mapping
    def _map(self, device_path: str) -> str:
        p = posixpath.normpath("/" + device_path.lstrip("/")) if device_path else "/"
        if p.startswith("//"):
            p = "/" + p.lstrip("/")
        return str(self.root) + ("" if p == "/" else p)

    def _rewrite_cmd(self, cmd: str) -> str:
        return cmd.replace(DEVICE_TMP, str(self.device_tmp))

    def _usage_bytes(self) -> int:
        total = 0
        skip = {str(self.bin_dir), str(self.root / ".fakeadbd")}
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = [d for d in dirnames if os.path.join(dirpath, d) not in skip]
            for f in filenames:
                try:
                    st = os.lstat(os.path.join(dirpath, f))
                except OSError:
                    continue
                if _stat.S_ISREG(st.st_mode):
                    total += st.st_size
        return total

    # ------------------------------------------------------------------ shell
    def _svc_shell(self, st: _Stream, service: str) -> None:
        head, _, cmd = service.partition(":")
        opts = head.split(",")[1:]
        v2 = head.startswith("shell") and "v2" in opts
        if head == "exec":
            pty = False
        elif "raw" in opts:
            pty = False
        elif "pty" in opts:
            pty = True
        else:
            pty = cmd == ""
        with self._lock:
            self.shell_commands.append(cmd)
            drop = next((after for pat, after in self._drop_patterns if pat in cmd), None)

        env = dict(os.environ)
        env["PATH"] = f"{self.bin_dir}{os.pathsep}{env.get('PATH', '/usr/bin:/bin')}"
        env["FAKE_ADBD_ROOT"] = str(self.root)
        for k in ("ANDROID_ADB_SERVER_PORT", "ANDROID_SERIAL"):
            env.pop(k, None)
        argv = ["/bin/sh", "-c", self._rewrite_cmd(cmd)] if cmd else ["/bin/sh"]
        merge = pty or not v2
        proc = subprocess.Popen(
            argv, cwd=str(self.root), env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT if merge else subprocess.PIPE, start_new_session=True,
        )
        st.conn.procs.add(proc)
        if st.conn.dead:
            _kill_tree(proc)
        if drop is not None:
            timer = threading.Timer(drop, self._trigger_drop)
            timer.daemon = True
            timer.start()
        try:
            def pump(fd: int, ident: int) -> None:
                chunk_max = max(1024, st.conn.max_payload - 5)
                try:
                    while True:
                        data = os.read(fd, chunk_max)
                        if not data:
                            return
                        if v2:
                            st.write(bytes([ident]) + struct.pack("<I", len(data)) + data)
                        else:
                            st.write(data)
                except (_Closed, OSError):
                    _kill_tree(proc)

            def feed() -> None:
                buf = bytearray()
                stdin = proc.stdin
                try:
                    while True:
                        chunk = st.read()
                        if chunk is None:
                            if not st._sent_close:  # host closed the stream: hang up
                                _kill_tree(proc)
                            return
                        if not v2:
                            if stdin is not None:
                                try:
                                    stdin.write(chunk)
                                    stdin.flush()
                                except OSError:
                                    stdin = None
                            continue
                        buf += chunk
                        while len(buf) >= 5:
                            ident = buf[0]
                            (n,) = struct.unpack("<I", buf[1:5])
                            if len(buf) < 5 + n:
                                break
                            payload = bytes(buf[5:5 + n])
                            del buf[:5 + n]
                            if ident == SH_STDIN and stdin is not None:
                                try:
                                    stdin.write(payload)
                                    stdin.flush()
                                except OSError:
                                    stdin = None
                            elif ident == SH_CLOSE_STDIN and stdin is not None:
                                try:
                                    stdin.close()
                                except OSError:
                                    pass
                                stdin = None
                            # SH_WINDOW and others: ignored
                finally:
                    if stdin is not None:
                        try:
                            stdin.close()
                        except OSError:
                            pass

            threading.Thread(target=feed, daemon=True, name="fake-adbd-stdin").start()
            pumps = [threading.Thread(target=pump, args=(proc.stdout.fileno(), SH_STDOUT), daemon=True)]
            if not merge:
                pumps.append(threading.Thread(target=pump, args=(proc.stderr.fileno(), SH_STDERR),
                                              daemon=True))
            for t in pumps:
                t.start()
            for t in pumps:
                t.join()
            rc = proc.wait()
            if rc < 0:
                rc = 128 - rc
            if v2 and not st.conn.dead:
                st.write(bytes([SH_EXIT]) + struct.pack("<I", 1) + bytes([rc & 0xFF]))
        finally:
            _kill_tree(proc)
            proc.wait()
            for f in (proc.stdout, proc.stderr):
                if f is not None:
                    f.close()
            st.conn.procs.discard(proc)

    # ------------------------------------------------------------------ sync
    def _svc_sync(self, st: _Stream, service: str) -> None:
        out = bytearray()

        def flush() -> None:
            if out:
                st.write(bytes(out))
                out.clear()

        def fail(msg: str) -> None:
            b = msg.encode()
            out.extend(struct.pack("<II", ID_FAIL, len(b)) + b)
            flush()

        while True:
            flush()
            ident, n = struct.unpack("<II", st.read_exact(8))
            if n > 1024:
                fail("path too long")
                return
            raw = st.read_exact(n)
            path = raw.decode("utf-8", "surrogateescape")
            if ident == ID_QUIT:
                return
            with self._lock:
                self.sync_ops.append((struct.pack("<I", ident).decode("ascii", "replace"), path))
            if ident == ID_STAT:
                try:
                    s = os.lstat(self._map(path))
                    out.extend(struct.pack("<IIII", ID_STAT, s.st_mode & _U32, s.st_size & _U32,
                                           int(s.st_mtime) & _U32))
                except OSError:
                    out.extend(struct.pack("<IIII", ID_STAT, 0, 0, 0))
            elif ident in (ID_STA2, ID_LST2):
                fn = os.stat if ident == ID_STA2 else os.lstat
                try:
                    s = fn(self._map(path))
                    out.extend(_STAT_V2.pack(ident, 0, s.st_dev & _U64, s.st_ino & _U64,
                                             s.st_mode & _U32, s.st_nlink & _U32, s.st_uid & _U32,
                                             s.st_gid & _U32, s.st_size & _U64, int(s.st_atime),
                                             int(s.st_mtime), int(s.st_ctime)))
                except OSError as e:
                    out.extend(_STAT_V2.pack(ident, e.errno or _errno.EIO, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
            elif ident in (ID_LIST, ID_LIS2):
                self._sync_list(out, path, v2=(ident == ID_LIS2), flush=flush)
            elif ident == ID_SEND:
                if not self._sync_send(st, out, path, fail):
                    return
            elif ident == ID_RECV:
                if not self._sync_recv(st, out, path, fail, flush):
                    return
            else:
                fail(f"unknown command {ident:08x}")
                return

    def _sync_list(self, out: bytearray, path: str, v2: bool, flush: Callable[[], None]) -> None:
        host = self._map(path)
        try:
            names = [".", ".."] + sorted(os.listdir(host))
        except OSError:
            names = []
        for name in names:
            bname = os.fsencode(name)
            try:
                s = os.lstat(os.path.join(host, name))
            except OSError as e:
                if v2:
                    out.extend(_DENT_V2.pack(ID_DNT2, e.errno or _errno.EIO, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                             len(bname)) + bname)
                continue
            if v2:
                out.extend(_DENT_V2.pack(ID_DNT2, 0, s.st_dev & _U64, s.st_ino & _U64, s.st_mode & _U32,
                                         s.st_nlink & _U32, s.st_uid & _U32, s.st_gid & _U32,
                                         s.st_size & _U64, int(s.st_atime), int(s.st_mtime),
                                         int(s.st_ctime), len(bname)) + bname)
            else:
                out.extend(struct.pack("<IIIII", ID_DENT, s.st_mode & _U32, s.st_size & _U32,
                                       int(s.st_mtime) & _U32, len(bname)) + bname)
            if len(out) >= SYNC_DATA_MAX:
                flush()
        if v2:
            out.extend(_DENT_V2.pack(ID_DONE, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0))
        else:
            out.extend(struct.pack("<IIIII", ID_DONE, 0, 0, 0, 0))

    def _sync_send(self, st: _Stream, out: bytearray, spec: str, fail: Callable[[str], None]) -> bool:
        dev_path, comma, mode_text = spec.rpartition(",")
        if not comma:
            fail("missing , in ID_SEND_V1")
            return False
        try:
            mode = _strtoul0(mode_text)
        except ValueError:
            fail("bad mode")
            return False
        host = self._map(dev_path)
        norm = posixpath.normpath("/" + dev_path.lstrip("/"))
        writable = any(norm == p or norm.startswith(p.rstrip("/") + "/")
                       for p in self.writable_prefixes)

        def drain() -> None:
            while True:
                ident, n = struct.unpack("<II", st.read_exact(8))
                if ident == ID_DONE:
                    return
                if ident != ID_DATA or n > SYNC_DATA_MAX:
                    return
                st.read_exact(n)

        if not writable:
            fail(f"couldn't create file: {os.strerror(_errno.EACCES)}")
            drain()
            return False
        if _stat.S_ISLNK(mode):
            ident, n = struct.unpack("<II", st.read_exact(8))
            if ident != ID_DATA:
                fail("invalid data message: expected ID_DATA")
                return False
            target = st.read_exact(n).rstrip(b"\0")
            try:
                if os.path.lexists(host):
                    os.unlink(host)
                os.makedirs(os.path.dirname(host), exist_ok=True)
                os.symlink(target, host)
            except OSError as e:
                fail(f"symlink failed: {os.strerror(e.errno or _errno.EIO)}")
                return False
            ident, n = struct.unpack("<II", st.read_exact(8))
            if ident != ID_DONE:
                fail("invalid data message: expected ID_DONE")
                return False
            try:
                os.utime(host, (n, n), follow_symlinks=False)
            except OSError:
                pass
            out.extend(struct.pack("<II", ID_OKAY, 0))
            return True

        mode &= 0o777
        mode |= (mode >> 3) & 0o070
        mode |= (mode >> 3) & 0o007
        try:
            if os.path.islink(host) or os.path.isfile(host):
                os.unlink(host)
            os.makedirs(os.path.dirname(host), exist_ok=True)
            fd = os.open(host, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        except OSError as e:
            fail(f"couldn't create file: {os.strerror(e.errno or _errno.EIO)}")
            drain()
            return False
        quota = self._disk_quota
        base = self._usage_bytes() if quota is not None else 0
        written = 0
        try:
            while True:
                ident, n = struct.unpack("<II", st.read_exact(8))
                if ident == ID_DONE:
                    mtime = n
                    break
                if ident != ID_DATA:
                    raise _SendError("invalid data message", drain=False)
                if n > SYNC_DATA_MAX:
                    raise _SendError("oversize data message", drain=False)
                data = st.read_exact(n)
                quota = self._disk_quota
                if quota is not None and base + written + len(data) > quota:
                    raise _SendError(f"write failed: {os.strerror(_errno.ENOSPC)}")
                os.write(fd, data)
                written += len(data)
        except _SendError as e:
            os.close(fd)
            fd = -1
            try:
                os.unlink(host)
            except OSError:
                pass
            fail(str(e))
            if e.drain:
                drain()
            return False
        finally:
            if fd >= 0:
                os.close(fd)
        try:
            os.chmod(host, mode)
            os.utime(host, (mtime, mtime))
        except OSError:
            pass
        out.extend(struct.pack("<II", ID_OKAY, 0))
        return True

    def _sync_recv(self, st: _Stream, out: bytearray, path: str, fail: Callable[[str], None],
                   flush: Callable[[], None]) -> bool:
        try:
            f = open(self._map(path), "rb")
        except OSError as e:
            fail(f"open failed: {os.strerror(e.errno or _errno.EIO)}")
            return False
        with f:
            while True:
                try:
                    data = f.read(SYNC_DATA_MAX - 8)
                except OSError as e:
                    fail(f"read failed: {os.strerror(e.errno or _errno.EIO)}")
                    return False
                if not data:
                    break
                out.extend(struct.pack("<II", ID_DATA, len(data)) + data)
                if len(out) >= st.conn.max_payload - SYNC_DATA_MAX:
                    flush()
        out.extend(struct.pack("<II", ID_DONE, 0))
        return True


class _SendError(Exception):
    def __init__(self, msg: str, drain: bool = True):
        super().__init__(msg)
        self.drain = drain


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Fake device-side adb daemon on 127.0.0.1")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--root", required=True, help="sandbox directory backing the device filesystem")
    ap.add_argument("--prop", action="append", default=[], metavar="NAME=VALUE")
    args = ap.parse_args(argv)
    props = dict(p.split("=", 1) for p in args.prop)
    dev = FakeAdbd(args.root, args.port, props=props).start()
    print(dev.port, flush=True)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    finally:
        dev.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
