#!/usr/bin/env python3
"""Run every check paymobctl has, the same locally and in CI: ruff, ruff format, mypy, pytest.

pytest runs the fast suite by default (`-m "not slow"`: everything in process, about 1,000
tests); `--slow` runs only the tests marked slow (real sockets, processes, signals, the tunnel
agent, the browser), `--all` both. CI (.ci/run) runs the default, then the slow tests. Other
arguments go to pytest; a `-m` among them replaces the selection.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

SELECTIONS = {"--fast": ["-m", "not slow"], "--slow": ["-m", "slow"], "--all": []}


def steps(args: list[str]) -> list[tuple[str, list[str]]]:
    chosen = [a for a in args if a in SELECTIONS]
    rest = [a for a in args if a not in SELECTIONS]
    if len(chosen) > 1:
        raise SystemExit(f"check.py: choose one of {', '.join(SELECTIONS)}, not {' '.join(chosen)}")
    given_m = any(a.startswith("-m") for a in rest)  # -m EXPR or -mEXPR
    selection = [] if given_m else SELECTIONS[chosen[0] if chosen else "--fast"]
    return [
        ("ruff lint", [PY, "-m", "ruff", "check", "paymobctl", "tests", "scripts", "examples"]),
        (
            "ruff format",
            [PY, "-m", "ruff", "format", "--check", "paymobctl", "tests", "scripts", "examples"],
        ),
        ("mypy --strict", [PY, "-m", "mypy", "paymobctl"]),
        ("pytest", [PY, "-m", "pytest", *selection, *rest]),
    ]


def main() -> int:
    failed: list[str] = []
    for name, command in steps(sys.argv[1:]):
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
