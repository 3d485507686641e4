"""The emulated Arm64 environment: QEMU user mode, an arm64 Debian userland, the counting plugin.

`setup()` builds it once under the cache folder (`$MOBILEDEPLOY_CACHE/arm64`, default
`~/.cache/mobiledeploy/arm64`); every later call finds it and does nothing, and nothing after it
needs the network. `environment()` loads what setup recorded, or says how to make it.

Layout of the cache folder (each part built in a temporary sibling and renamed into place):

    sysroot/            arm64 Debian userland: python3.11 and its libraries (dpkg-deb -x of the
                        .debs), the aarch64 ai-edge-litert and numpy wheels in dist-packages
    cpus/<cpu>/         one view per emulated core: symlinks to sysroot's folders, plus a fixed
                        proc/cpuinfo and sys/devices/system/cpu (see `cpu_view`)
    plugin/insn_count.so  the TCG plugin built from insn_count.c
    env.json            versions of everything above, written last: present = environment ready

Why a view per core: LiteRT's cpuinfo library reads /proc/cpuinfo and /sys/devices/system/cpu to
pick kernels; under QEMU those would be the x86 host's (Interpreter() then segfaults, and the
count would change with the host). `qemu-aarch64 -L DIR` looks a path up in DIR first, so a file
placed in the view replaces the host's without any mount namespace or root.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import DeviceError

__all__ = ["CPUS", "DEFAULT_CPU", "MARKER", "Environment", "EmulatorMissingError", "environment", "setup",
           "cache_root", "SETUP_HINT", "hwcap_names", "run_tool"]

Progress = Callable[[str], None]

SETUP_HINT = "run `mobiledeploy qemu setup` (or `make arm`)"
DEFAULT_CPU = "cortex-a76"
#: the syscall number the guest issues around what it measures (unused on aarch64 Linux: 'MD')
MARKER = 0x4D44

#: MIDR_EL1 of each core QEMU 7.2 emulates, read with `mrs` under `qemu-aarch64 -cpu NAME` on this
#: project's CI host (implementer, variant, part, revision); /proc/cpuinfo shows them like a kernel does.
CPUS: dict[str, int] = {
    "cortex-a35": 0x411FD040,
    "cortex-a53": 0x410FD034,
    "cortex-a57": 0x411FD070,
    "cortex-a72": 0x410FD083,
    "cortex-a76": 0x414FD0B1,
    "neoverse-n1": 0x414FD0C1,
    "a64fx": 0x461F0010,
    "max": 0x000F0510,
}

#: Linux arm64 HWCAP / HWCAP2 bit names, as /proc/cpuinfo prints them (arch/arm64 elf_hwcaps).
_HWCAP = ("fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm jscvt fcma lrcpc dcpop "
          "sha3 sm3 sm4 asimddp sha512 sve asimdfhm dit uscat ilrcpc flagm ssbs sb paca pacg").split()
_HWCAP2 = ("dcpodp sve2 sveaes svepmull svebitperm svesha3 svesm4 flagm2 frint svei8mm svef32mm svef64mm svebf16 "
           "i8mm bf16 dgh rng bti mte ecv afp rpres mte3 sme smei16i64 smef64f64 smei8i32 smef16f32 smeb16f32 "
           "smef32f32 smefa64 wfxt").split()

#: The arm64 Debian packages of the userland (python3.11 and what it and LiteRT load).
PACKAGES = ("python3.11-minimal", "libpython3.11-minimal", "libpython3.11-stdlib", "libc6", "libstdc++6", "libgcc-s1",
            "zlib1g", "libffi8", "libssl3", "libexpat1", "libbz2-1.0", "liblzma5", "libsqlite3-0", "libuuid1",
            "libcrypt1", "libncursesw6", "libtinfo6", "libreadline8", "libdb5.3", "libgdbm6", "libnsl2", "libtirpc3")
#: Python distributions installed into the userland, pinned to the host's versions where it has them.
WHEELS = ("ai-edge-litert", "numpy")
LAYOUT_VERSION = 1


class EmulatorMissingError(DeviceError):
    """qemu-aarch64, the arm64 userland or the counting plugin is not set up."""


def hwcap_names(hwcap: int, hwcap2: int) -> list[str]:
    names = [n for i, n in enumerate(_HWCAP) if hwcap >> i & 1]
    return names + [n for i, n in enumerate(_HWCAP2) if hwcap2 >> i & 1]


def cache_root() -> Path:
    from ..files import cache_dir

    return cache_dir() / "arm64"


@dataclass
class Environment:
    root: Path
    qemu: str
    versions: dict[str, Any]
    cpus: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def sysroot(self) -> Path:
        return self.root / "sysroot"

    @property
    def plugin(self) -> Path:
        return self.root / "plugin" / "insn_count.so"

    def view(self, cpu: str) -> Path:
        return self.root / "cpus" / cpu

    def python(self, cpu: str) -> Path:
        return self.view(cpu) / "usr" / "bin" / "python3.11"

    def features(self, cpu: str) -> list[str]:
        return list((self.cpus.get(cpu) or {}).get("features") or [])

    def command(self, cpu: str, script: Path, *args: str, counts: Path | None = None, profile: bool = False,
                plugins: tuple[str, ...] = ()) -> list[str]:
        """argv of one emulated Python run of `script` on `cpu`, counted into `counts` when given; `plugins`
        are more `-plugin` arguments (beside the counting one, whose counts they never change)."""
        argv = [self.qemu, "-cpu", cpu, "-L", str(self.view(cpu))]
        if counts is not None:
            plugin = f"{self.plugin},out={counts},marker={MARKER}" + (",profile=1" if profile else "")
            argv += ["-plugin", plugin]
        for extra in plugins:
            argv += ["-plugin", extra]
        return [*argv, str(self.python(cpu)), str(script), *args]


def guest_env() -> dict[str, str]:
    """The guest's environment: nothing of the host's Python, one BLAS thread, no hash randomisation."""
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
            "PYTHONHASHSEED": "0", "PYTHONDONTWRITEBYTECODE": "1", "TF_CPP_MIN_LOG_LEVEL": "0"}


def environment(root: Path | None = None) -> Environment:
    """The environment setup() made; EmulatorMissingError (one line, with the setup command) if not."""
    root = root or cache_root()
    qemu = shutil.which("qemu-aarch64")
    if qemu is None:
        raise EmulatorMissingError(f"qemu-aarch64 is not installed (Debian: apt-get install qemu-user): {SETUP_HINT}")
    try:
        recorded = json.loads((root / "env.json").read_text())
    except FileNotFoundError:
        raise EmulatorMissingError(f"the emulated Arm64 environment is not set up in {root}: {SETUP_HINT}") from None
    except OSError as exc:  # there, but not readable: setup would not help, the permissions would
        raise EmulatorMissingError(f"the Arm64 environment's {root / 'env.json'} cannot be read: "
                                   f"{exc.strerror or exc}") from None
    except ValueError:
        raise EmulatorMissingError(f"the Arm64 environment's {root / 'env.json'} is not valid JSON (damaged): "
                                   f"mobiledeploy qemu setup --force") from None
    if not isinstance(recorded, dict):
        raise EmulatorMissingError(f"the Arm64 environment's {root / 'env.json'} is damaged: "
                                   "mobiledeploy qemu setup --force")
    if recorded.get("layout") != LAYOUT_VERSION:
        raise EmulatorMissingError(f"the Arm64 environment in {root} is of an older layout: {SETUP_HINT}")
    env = Environment(root, qemu, recorded.get("versions") or {}, recorded.get("cpus") or {})
    if env.versions.get("qemu") != qemu_version(qemu):
        raise EmulatorMissingError(f"qemu-aarch64 changed since the Arm64 environment was set up: {SETUP_HINT}")
    if env.versions.get("plugin_sha256") != plugin_source_digest():
        raise EmulatorMissingError(f"the counting plugin's source changed since it was built: {SETUP_HINT}")
    if not env.plugin.is_file() or not (env.sysroot / "usr" / "bin" / "python3.11").is_file():
        raise EmulatorMissingError(f"the Arm64 environment in {root} is incomplete: {SETUP_HINT}")
    return env


def qemu_version(qemu: str) -> str:
    out = subprocess.run([qemu, "--version"], capture_output=True, text=True, timeout=30).stdout
    first = out.splitlines()[0] if out else ""
    return first.replace("qemu-aarch64 version", "").strip() or "unknown"


# --- setup ------------------------------------------------------------------------------------------

def setup(root: Path | None = None, *, cpus: tuple[str, ...] = tuple(CPUS), progress: Progress | None = None,
          force: bool = False) -> Environment:
    """Build (or find) the environment; returns it verified. Network only for the downloads."""
    root = root or cache_root()
    say = progress or (lambda message: None)
    if not force:
        try:
            env = environment(root)
            if all(c in env.cpus for c in cpus):
                _precompile(root / "sysroot", say)  # environments set up before it was a step
                say(f"Arm64 environment ready in {root}")
                return env
        except EmulatorMissingError:
            pass
    qemu = shutil.which("qemu-aarch64")
    if qemu is None:
        raise EmulatorMissingError("qemu-aarch64 is not installed: apt-get install qemu-user (make arm does it)")
    root.mkdir(parents=True, exist_ok=True)
    (root / "env.json").unlink(missing_ok=True)
    versions: dict[str, Any] = {"qemu": qemu_version(qemu)}
    if force or not (root / "sysroot" / "usr" / "bin" / "python3.11").is_file():
        _build_sysroot(root, say)
    _precompile(root / "sysroot", say)
    versions["debian"] = json.loads((root / "sysroot" / ".packages.json").read_text())
    versions["wheels"] = json.loads((root / "sysroot" / ".wheels.json").read_text())
    say("building the insn_count QEMU plugin")
    versions["plugin_sha256"] = _build_plugin(root)
    facts = {}
    for cpu in cpus:
        say(f"core view {cpu}")
        facts[cpu] = _build_view(root, qemu, cpu)
    env = Environment(root, qemu, versions, facts)
    check_cpu = DEFAULT_CPU if DEFAULT_CPU in facts else next(iter(facts))
    say(f"verifying: one counted run on {check_cpu}")
    _verify(env, check_cpu)
    _write_json(root / "env.json", {"layout": LAYOUT_VERSION, "versions": versions, "cpus": facts,
                                    "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    say(f"Arm64 environment ready in {root}")
    return env


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


def run_tool(argv: list[str], what: str, **kwargs: Any) -> subprocess.CompletedProcess:
    """One step of setup (a download, a build); its failure is one EmulatorMissingError line naming `what`."""
    try:
        return subprocess.run(argv, check=True, capture_output=True, text=True, **kwargs)
    except FileNotFoundError:
        raise EmulatorMissingError(f"{what}: {argv[0]} is not installed") from None
    except subprocess.CalledProcessError as exc:
        tail = " ".join((exc.stderr or exc.stdout or "").split())[-300:]
        raise EmulatorMissingError(f"{what} failed: {tail}") from None
    except subprocess.TimeoutExpired:
        raise EmulatorMissingError(f"{what} timed out") from None


def _apt_sources(dest: Path) -> None:
    """The host's Debian sources (or $MOBILEDEPLOY_APT_SOURCES), used with a private apt state."""
    (dest / "etc/apt/sources.list.d").mkdir(parents=True, exist_ok=True)
    given = os.environ.get("MOBILEDEPLOY_APT_SOURCES")
    files = [Path(given)] if given else [*Path("/etc/apt/sources.list.d").glob("*.sources"),
                                         *Path("/etc/apt/sources.list.d").glob("*.list"), Path("/etc/apt/sources.list")]
    found = False
    for src in files:
        if src.is_file() and src.read_text().strip():
            shutil.copy(src, dest / "etc/apt/sources.list.d" / (src.name if src.suffix in (".sources", ".list")
                                                                 else src.name + ".list"))
            found = True
    if not found:
        raise EmulatorMissingError("no apt sources to fetch arm64 Debian packages from: set MOBILEDEPLOY_APT_SOURCES "
                                   "to a sources file of Debian bookworm")


def _build_sysroot(root: Path, say: Progress) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=".sysroot-", dir=root))
    try:
        apt = tmp / "apt"
        for sub in ("var/lib/apt/lists/partial", "var/cache/apt/archives/partial", "var/lib/dpkg", "etc/apt/preferences.d"):
            (apt / sub).mkdir(parents=True, exist_ok=True)
        (apt / "var/lib/dpkg/status").touch()
        _apt_sources(apt)
        opts = ["-q", "-o", f"Dir={apt}", "-o", f"Dir::State::status={apt}/var/lib/dpkg/status",
                "-o", "APT::Architecture=arm64", "-o", "APT::Architectures::=arm64", "-o", "Debug::NoLocking=1",
                "-o", "APT::Sandbox::User=root"]
        say("arm64 userland: apt-get update (private state, arm64 only)")
        run_tool(["apt-get", *opts, "update"], "apt-get update for arm64", timeout=600)
        debs = tmp / "debs"
        debs.mkdir()
        say(f"arm64 userland: downloading {len(PACKAGES)} Debian packages")
        run_tool(["apt-get", *opts, "download", *PACKAGES], "apt-get download (arm64)", cwd=debs, timeout=900)
        sysroot = tmp / "sysroot"
        packages = {}
        for deb in sorted(debs.glob("*.deb")):
            run_tool(["dpkg-deb", "-x", str(deb), str(sysroot)], f"dpkg-deb -x {deb.name}")
            name, version = deb.name.split("_")[:2]
            packages[name] = version.replace("%3a", ":")
        (sysroot / ".packages.json").write_text(json.dumps(packages, indent=1, sort_keys=True))
        say("arm64 userland: downloading the aarch64 wheels (" + ", ".join(WHEELS) + ")")
        wheels = tmp / "wheels"
        pins = [_pin(name) for name in WHEELS]
        run_tool([sys.executable, "-m", "pip", "download", "-q", "--only-binary=:all:", "--python-version", "3.11",
              "--platform", "manylinux_2_27_aarch64", "--platform", "manylinux_2_28_aarch64",
              "--platform", "manylinux2014_aarch64", "--platform", "manylinux_2_17_aarch64",
              "-d", str(wheels), *pins], "pip download (aarch64 wheels)", timeout=900)
        site = sysroot / "usr/lib/python3/dist-packages"
        site.mkdir(parents=True, exist_ok=True)
        installed = {}
        import zipfile

        for wheel in sorted(wheels.glob("*.whl")):
            with zipfile.ZipFile(wheel) as zf:
                zf.extractall(site)
            name, version = wheel.name.split("-")[:2]
            installed[name] = version
        (sysroot / ".wheels.json").write_text(json.dumps(installed, indent=1, sort_keys=True))
        final = root / "sysroot"
        if final.exists():
            shutil.rmtree(final)
        os.replace(sysroot, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _precompile(sysroot: Path, say: Progress) -> None:
    """Byte-compile the userland's Python modules once, with the host's Python 3.11 (same bytecode).

    Unpacked packages carry no .pyc (Debian compiles them in postinst, pip at install) and the guest
    writes none (PYTHONDONTWRITEBYTECODE, so runs never race on the sysroot): without this every
    emulated run compiled numpy, LiteRT and the stdlib again, half of its ~10 s. Counts are not
    touched: compiling happens at import, outside every marker bracket."""
    marker = sysroot / ".compiled"
    if marker.is_file() or sys.version_info[:2] != (3, 11):
        return
    say("arm64 userland: compiling its Python modules (once)")
    try:
        run_tool([sys.executable, "-m", "compileall", "-q", "-j", "0", str(sysroot / "usr/lib/python3.11"),
              str(sysroot / "usr/lib/python3/dist-packages")], "byte-compiling the arm64 userland", timeout=1800)
    except EmulatorMissingError as exc:  # slower runs, not wrong ones: say so and go on
        say(f"warning: {exc}")
        return
    marker.write_text(f"compiled by Python {sys.version.split()[0]}\n")


def _pin(dist: str) -> str:
    from importlib import metadata

    try:
        return f"{dist}=={metadata.version(dist)}"
    except metadata.PackageNotFoundError:
        return dist


#: the counting plugin's C source and the headers it includes: every input of its build
PLUGIN_SOURCES = ("insn_count.c", "qemu_plugin_api.h", "plugin_io.h")


def plugin_source_digest() -> str:
    """sha256 of the plugin's C source and headers: the environment is stale when it differs."""
    here = Path(__file__)
    return hashlib.sha256(b"".join(here.with_name(name).read_bytes() for name in PLUGIN_SOURCES)).hexdigest()


def _build_plugin(root: Path) -> str:
    src = Path(__file__).with_name("insn_count.c")
    header = Path(__file__).with_name("qemu_plugin_api.h")
    digest = plugin_source_digest()
    out = root / "plugin" / "insn_count.so"
    stamp = root / "plugin" / "source.sha256"
    if out.is_file() and stamp.is_file() and stamp.read_text().strip() == digest:
        return digest
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(".insn_count.so.tmp")
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc") or "gcc"
    run_tool([cc, "-O2", "-shared", "-fPIC", "-fvisibility=hidden", "-I", str(header.parent), "-o", str(tmp), str(src)],
         "building the QEMU plugin (needs gcc)")
    os.replace(tmp, out)
    stamp.write_text(digest + "\n")
    return digest


#: What every core view shows of /sys/devices/system/cpu: two equal cores, a fixed private L2 and
#: frequency, so that no file falls through to the host's (QEMU uses the host's where the view has none).
#: These are the files LiteRT's cpuinfo reads (seen with `qemu-aarch64 -strace`).
VIEW_CORES = 2
VIEW_L2_BYTES = 512 * 1024
VIEW_MAX_KHZ, VIEW_MIN_KHZ = 2_000_000, 500_000


def cpuinfo_text(cpu: str, features: list[str]) -> str:
    midr = CPUS[cpu]
    block = (f"BogoMIPS\t: 50.00\nFeatures\t: {' '.join(features)}\nCPU implementer\t: 0x{midr >> 24 & 0xFF:02x}\n"
             f"CPU architecture: 8\nCPU variant\t: 0x{midr >> 20 & 0xF:x}\nCPU part\t: 0x{midr >> 4 & 0xFFF:03x}\n"
             f"CPU revision\t: {midr & 0xF}\n")
    return "".join(f"processor\t: {i}\n{block}\n" for i in range(VIEW_CORES))


def _sys_files(cores: int) -> dict[str, str]:
    span = f"0-{cores - 1}"
    files = {"kernel_max": str(cores - 1), "possible": span, "present": span, "online": span, "offline": ""}
    for i in range(cores):
        files.update({
            f"cpu{i}/online": "1",
            f"cpu{i}/cache/index2/level": "2",
            f"cpu{i}/cache/index2/size": f"{VIEW_L2_BYTES // 1024}K",
            f"cpu{i}/cache/index2/shared_cpu_list": str(i),
            f"cpu{i}/cpufreq/cpuinfo_max_freq": str(VIEW_MAX_KHZ),
            f"cpu{i}/cpufreq/cpuinfo_min_freq": str(VIEW_MIN_KHZ),
            f"cpu{i}/topology/cluster_cpus_list": span,
            f"cpu{i}/topology/core_siblings_list": span,
            f"cpu{i}/topology/thread_siblings_list": str(i),
            f"cpu{i}/topology/physical_package_id": "0",
        })
    return files


_PROBE = ("import ctypes, json; g = ctypes.CDLL(None).getauxval; g.restype = ctypes.c_ulong; "
          "g.argtypes = [ctypes.c_ulong]; print(json.dumps([g(16), g(26)]))")


def _build_view(root: Path, qemu: str, cpu: str) -> dict[str, Any]:
    """cpus/<cpu>/: the shared userland plus this core's /proc/cpuinfo and /sys/devices/system/cpu."""
    views = root / "cpus"
    views.mkdir(exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{cpu}-", dir=views))
    try:
        for entry in (root / "sysroot").iterdir():
            if entry.name not in ("proc", "sys") and not entry.name.startswith("."):
                (tmp / entry.name).symlink_to(Path("..") / ".." / "sysroot" / entry.name)
        out = run_tool([qemu, "-cpu", cpu, "-L", str(tmp), str(tmp / "usr/bin/python3.11"), "-c", _PROBE],
                   f"probing the features of {cpu}", env=guest_env(), timeout=300).stdout
        hwcap, hwcap2 = json.loads(out.strip().splitlines()[-1])
        features = hwcap_names(hwcap, hwcap2)
        (tmp / "proc").mkdir()
        (tmp / "proc" / "cpuinfo").write_text(cpuinfo_text(cpu, features))
        sysdir = tmp / "sys" / "devices" / "system" / "cpu"
        for rel, text in _sys_files(VIEW_CORES).items():
            path = sysdir / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text + "\n" if text else "")
        final = views / cpu
        if final.exists() or final.is_symlink():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"midr": f"0x{CPUS[cpu]:08x}", "hwcap": hwcap, "hwcap2": hwcap2, "features": features}


def _verify(env: Environment, cpu: str) -> None:
    """One counted run of a two-marker script: the plugin loads and counts, the userland imports LiteRT."""
    with tempfile.TemporaryDirectory(prefix="mobiledeploy-verify-") as tmp:
        script = Path(tmp) / "verify.py"
        script.write_text("import ctypes\nfrom ai_edge_litert.interpreter import Interpreter\n"
                          f"s = ctypes.CDLL(None).syscall\ns({MARKER}, 1, 0)\ns({MARKER}, 1, 0)\n")
        counts = Path(tmp) / "counts.txt"
        run_tool(env.command(cpu, script, counts=counts),
             "the verification run under qemu-aarch64", env=guest_env(), timeout=300)
        marks = [line for line in counts.read_text().splitlines() if line.startswith("M ")]
        if len(marks) != 2:
            raise EmulatorMissingError(f"the counting plugin recorded {len(marks)} markers instead of 2 in the check run")

