"""Machine facts and the fingerprint that says whether two measurements are comparable."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
from pathlib import Path
from typing import Any

import psutil


def _clean(value: Any) -> str:
    return " ".join(str(value).split()).lower() if value not in (None, "") else ""


def comparability_fields(machine_info: dict[str, Any]) -> dict[str, str]:
    """The machine facts that decide whether two measurements are comparable.

    Accepts pytest-benchmark's ``machine_info``, asv's machine parameters
    (``machine.json`` or a results file's ``params``) and ``local_machine_info()``.
    Returns normalised (lower-case, single-spaced) values for ``cpu`` (model or
    brand), ``cores``, ``arch``, ``system`` (kernel name only, not its release),
    ``python`` (implementation and major.minor) and ``name`` (only a name chosen
    on purpose: asv's ``machine`` or ``machine_name``; a host name is not used,
    because CI runners get a new one on every run). Missing facts are "".
    """
    cpu_block = machine_info.get("cpu")
    if isinstance(cpu_block, dict):
        # pytest-benchmark (py-cpuinfo) layout, where "machine" is the architecture.
        cpu = cpu_block.get("brand_raw") or cpu_block.get("brand") or ""
        cores = cpu_block.get("count", "")
        arch = machine_info.get("machine") or cpu_block.get("arch_string_raw") or ""
        name = machine_info.get("machine_name", "")
    else:
        # asv layout, where "machine" is the name the user chose.
        cpu = cpu_block or machine_info.get("cpu_model") or ""
        cores = machine_info.get("num_cpu") or machine_info.get("cpu_count") or ""
        arch = machine_info.get("arch") or ""
        name = machine_info.get("machine_name") or machine_info.get("machine") or ""
    system = machine_info.get("system") or ""
    if not system and isinstance(machine_info.get("os"), str):
        system = machine_info["os"].split(" ", 1)[0]  # asv: "Linux 6.1.0-18-amd64"
    implementation = machine_info.get("python_implementation") or ""
    python = str(machine_info.get("python_version") or machine_info.get("python") or "")
    if python.lower().startswith("pypy"):
        implementation, python = "PyPy", python[4:]
    match = re.match(r"\s*(\d+)\.(\d+)", python)
    version = f"{match.group(1)}.{match.group(2)}" if match else python
    if version and not implementation:
        implementation = "CPython"  # asv records only the version of CPython
    return {
        "cpu": _clean(cpu),
        "cores": _clean(cores),
        "arch": _clean(arch),
        "system": _clean(system),
        "python": _clean(f"{implementation} {version}".strip()),
        "name": _clean(name),
    }


def machine_fingerprint(machine_info: dict[str, Any]) -> str:
    """A short stable hash (16 hex digits) of ``comparability_fields(machine_info)``.

    Two results compare fairly when their fingerprints are equal: same CPU model,
    core count, architecture, operating system, Python implementation and
    major.minor version, and the same chosen machine name when one is given.
    Memory size, kernel release and host name are left out on purpose: they
    change without changing the figures much, and would split the history.
    """
    fields = comparability_fields(machine_info)
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


def _proc_cpuinfo_model() -> str:
    try:
        with Path("/proc/cpuinfo").open(encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "Hardware"):
                    return value.strip()
    except OSError:
        pass
    return ""


def _memory_bytes() -> int | None:
    try:
        return int(psutil.virtual_memory().total)
    except (OSError, psutil.Error):  # memory size is informative only
        return None


def local_machine_info(name: str | None = None) -> dict[str, Any]:
    """This machine's facts, in a layout ``machine_fingerprint`` understands.

    ``name`` is an optional chosen machine name (as asv's); it becomes part of
    the fingerprint.
    """
    info: dict[str, Any] = {
        "node": platform.node(),
        "system": platform.system(),
        "release": platform.release(),
        "arch": platform.machine(),
        "python_implementation": platform.python_implementation(),
        "python_version": platform.python_version(),
        "cpu_model": _proc_cpuinfo_model() or platform.processor(),
        "cpu_count": os.cpu_count() or 0,
        "memory_bytes": _memory_bytes(),
    }
    if name:
        info["machine_name"] = name
    return info
