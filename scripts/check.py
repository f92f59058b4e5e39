#!/usr/bin/env python3
"""Run every check paymobctl has, the same locally and in CI: ruff, ruff format, mypy, pytest."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

STEPS: list[tuple[str, list[str]]] = [
    ("ruff lint", [PY, "-m", "ruff", "check", "paymobctl", "tests", "scripts", "examples"]),
    (
        "ruff format",
        [PY, "-m", "ruff", "format", "--check", "paymobctl", "tests", "scripts", "examples"],
    ),
    ("mypy --strict", [PY, "-m", "mypy", "paymobctl"]),
    ("pytest", [PY, "-m", "pytest", *sys.argv[1:]]),
]


def main() -> int:
    failed: list[str] = []
    for name, command in STEPS:
        print(f"==> {name}: {' '.join(command[2:])}", flush=True)
        started = time.monotonic()
        code = subprocess.run(command, cwd=ROOT, check=False).returncode
        print(
            f"<== {name}: {'ok' if code == 0 else f'FAILED (exit {code})'} in {time.monotonic() - started:.1f} s\n",
            flush=True,
        )
        if code != 0:
            failed.append(name)
    if failed:
        print("checks failed: " + ", ".join(failed), flush=True)
        return 1
    print("all checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
