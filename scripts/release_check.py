#!/usr/bin/env python3
"""Release checks, run by CI after scripts/check.py: prove the package, not only the source tree.

1. build: the sdist and the wheel (`python -m build`, which builds the wheel from the sdist) with
   no deprecation warning, `twine check --strict`, and their contents against the tree;
2. wheel X.Y: the wheel alone (no dev extras, no tree on sys.path) in a fresh virtualenv on every
   Python the classifiers claim, running `paymobctl --version`, `hmac samples` and `demo`;
3. suite X.Y: the test suite on every claimed Python other than the one running this script;
4. minimum versions: the lowest versions the dependency bounds allow (uv --resolution
   lowest-direct) on the lowest claimed Python; each must be exactly its declared bound, and
   scripts/check.py --all (the slow tests too) must pass with them.

build, twine and uv are installed into a throw-away virtualenv (PyPI must be reachable).
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from benchlib import isolated_env

ROOT = Path(__file__).resolve().parent.parent
TOOLS = ["build>=1.2", "twine>=6.1", "uv>=0.5"]
# What the sdist must carry besides the package: enough to run the test suite from it.
SDIST_DIRS = ("paymobctl", "tests", "scripts", ".ci")
SDIST_FILES = ("LICENSE", "README.md", "pyproject.toml")
TAIL_LINES = 40


class Failure(Exception):
    """A release check failed; the message says what and what to do."""


@dataclass
class Context:
    work: Path
    pythons: dict[str, str]  # "3.12" -> interpreter path, for every claimed Python
    fast: bool
    version: str = ""
    classifiers: list[str] = field(default_factory=list)
    tools: Path = Path()
    wheel: Path = Path()
    sdist: Path = Path()


def log(message: str) -> None:
    print(message, flush=True)


def run(
    command: list[str],
    *,
    cwd: Path = ROOT,
    env: dict[str, str] | None = None,
    timeout: float = 900,
    stream: bool = False,
    stdout_only: bool = False,
) -> str:
    """Run `command`; on failure raise Failure with the end of its output.

    Returns what it printed (stdout and stderr; stdout alone with `stdout_only`)."""
    log(f"    $ {' '.join(command)}")
    if stream:
        done = subprocess.run(
            command, cwd=cwd, env=env, timeout=timeout, check=False, stdin=subprocess.DEVNULL
        )
        output = ""
    else:
        done = subprocess.run(
            command,
            cwd=cwd,
            env=env,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
        )
        output = done.stdout + done.stderr
    if done.returncode != 0:
        tail = "\n".join(output.splitlines()[-TAIL_LINES:])
        raise Failure(f"`{' '.join(command)}` exited {done.returncode}\n{tail}".rstrip())
    return done.stdout if stdout_only and not stream else output


def venv(python: str, path: Path) -> Path:
    """A fresh virtualenv at `path` made by `python`; returns its interpreter."""
    shutil.rmtree(path, ignore_errors=True)
    run([python, "-m", "venv", str(path)])
    return path / "bin" / "python"


# --- what the tree says ---------------------------------------------------------------------


def package_version() -> str:
    """paymobctl.__version__, read without importing the package."""
    tree = ast.parse((ROOT / "paymobctl" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets)
            and isinstance(node.value, ast.Constant)
        ):
            return str(node.value.value)
    raise Failure('paymobctl/__init__.py has no `__version__ = "..."`')


def pyproject() -> dict[str, object]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        project: dict[str, object] = tomllib.load(f)["project"]
    return project


def claimed_pythons(classifiers: Iterable[str]) -> list[str]:
    """The X.Y versions named by `Programming Language :: Python :: X.Y` classifiers, in order."""
    found = [m[1] for c in classifiers if (m := re.fullmatch(r".*Python :: (3\.\d+)", c))]
    return sorted(found, key=lambda v: int(v.split(".")[1]))


def find_python(minor: str) -> str | None:
    """This interpreter if it is `minor`, else the newest pyenv build of it, else pythonX.Y."""
    if f"{sys.version_info[0]}.{sys.version_info[1]}" == minor:
        return sys.executable
    roots = [Path.home() / ".pyenv", Path("/root/.pyenv")]
    candidates = sorted(
        (p for root in roots for p in root.glob(f"versions/{minor}.*/bin/python{minor}")),
        key=lambda p: [int(x) for x in re.findall(r"\d+", p.parts[-3])],
    )
    if candidates:
        return str(candidates[-1])
    return shutil.which(f"python{minor}")


def tracked_files(folders: Iterable[str]) -> set[str]:
    """Files under `folders` that git tracks (or, without git, that exist), as posix paths."""
    folders = tuple(folders)
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "--", *folders],
            cwd=ROOT,
            capture_output=True,
            check=True,
            text=True,
        ).stdout.split("\0")
        return {name for name in listed if name and (ROOT / name).is_file()}
    except (OSError, subprocess.CalledProcessError):
        return {
            p.relative_to(ROOT).as_posix()
            for folder in folders
            for p in (ROOT / folder).rglob("*")
            if p.is_file() and "__pycache__" not in p.parts
        }


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return normalized(match[1]) if match else requirement


def lower_bounds(requirements: Iterable[str]) -> dict[str, tuple[str, bool]]:
    """name -> (the `>=` bound, whether the requirement has an environment marker)."""
    bounds: dict[str, tuple[str, bool]] = {}
    for requirement in requirements:
        spec, _, marker = requirement.partition(";")
        match = re.search(r">=\s*([0-9][^,\s]*)", spec)
        if match:
            bounds[requirement_name(spec)] = (match[1], bool(marker.strip()))
    return bounds


def same_version(a: str, b: str) -> bool:
    """1.0 == 1.0.0; anything not purely numeric is compared as text."""

    def key(v: str) -> tuple[int, ...] | str:
        parts = v.split(".")
        if not all(p.isdigit() for p in parts):
            return v
        numbers = [int(p) for p in parts]
        while numbers and numbers[-1] == 0:
            numbers.pop()
        return tuple(numbers)

    return key(a) == key(b)


# --- the steps ------------------------------------------------------------------------------


def step_build(ctx: Context) -> None:
    python = venv(sys.executable, ctx.work / "tools")
    run([str(python), "-m", "pip", "install", "-q", *TOOLS], timeout=600)
    ctx.tools = python.parent
    dist = ctx.work / "dist"
    output = run([str(python), "-m", "build", "--outdir", str(dist), str(ROOT)], timeout=600)
    deprecated = [line for line in output.splitlines() if re.search("deprecat", line, re.I)]
    if deprecated:
        raise Failure("the build warns of deprecations:\n" + "\n".join(deprecated))
    wheels, sdists = list(dist.glob("*.whl")), list(dist.glob("*.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        raise Failure(f"expected one wheel and one sdist in {dist}, got {wheels + sdists}")
    ctx.wheel, ctx.sdist = wheels[0], sdists[0]
    log(f"    built {ctx.sdist.name} and {ctx.wheel.name}")
    run([str(ctx.tools / "twine"), "check", "--strict", str(ctx.sdist), str(ctx.wheel)])
    check_wheel(ctx)
    check_sdist(ctx)


def check_wheel(ctx: Context) -> None:
    with zipfile.ZipFile(ctx.wheel) as wheel:
        names = set(wheel.namelist())
        info = f"paymobctl-{ctx.version}.dist-info"
        if f"{info}/METADATA" not in names:
            raise Failure(f"{ctx.wheel.name} has no {info}/METADATA: is the version {ctx.version}?")
        metadata = wheel.read(f"{info}/METADATA").decode()
    missing = sorted(tracked_files(["paymobctl"]) - names)
    if missing:
        raise Failure(
            f"the wheel lacks {', '.join(missing)}: add the pattern to "
            "[tool.setuptools.package-data] in pyproject.toml"
        )
    if f"{info}/licenses/LICENSE" not in names:
        raise Failure('the wheel lacks its LICENSE: keep `license-files = ["LICENSE"]`')
    headers = [tuple(line.split(": ", 1)) for line in metadata.split("\n\n", 1)[0].splitlines()]
    expected = {("Version", ctx.version), ("License-Expression", "MIT")}
    expected |= {("Classifier", c) for c in ctx.classifiers}
    absent = sorted(expected - set(headers))
    if absent:
        raise Failure(f"the wheel's METADATA lacks {absent}")
    log(f"    wheel: {len(names)} files, every tracked file of paymobctl/ included")


def check_sdist(ctx: Context) -> None:
    with tarfile.open(ctx.sdist) as sdist:
        prefix = f"paymobctl-{ctx.version}/"
        names = {m.name.removeprefix(prefix) for m in sdist.getmembers() if m.isfile()}
    expected = tracked_files(SDIST_DIRS) | set(SDIST_FILES)
    missing = sorted(expected - names)
    if missing:
        raise Failure(f"the sdist lacks {', '.join(missing)}: add them to MANIFEST.in")
    log(f"    sdist: {len(names)} files, the package, tests and scripts included")


def step_wheel(ctx: Context, minor: str) -> None:
    if not ctx.wheel.is_file():
        raise Failure("no wheel (the build step failed)")
    target = ctx.work / f"wheel-{minor}"
    python = venv(ctx.pythons[minor], target / "venv")
    run([str(python), "-m", "pip", "install", "-q", str(ctx.wheel)], timeout=600)
    run([str(python), "-m", "pip", "check"])
    home = target / "home"
    home.mkdir()
    env = isolated_env(str(home))
    env.pop("PYTHONPATH", None)
    exe = str(python.parent / "paymobctl")

    def paymobctl(*args: str) -> str:
        return run([exe, *args], cwd=home, env=env, timeout=300)

    where = run([str(python), "-c", "import paymobctl; print(paymobctl.__file__)"], cwd=home)
    if not Path(where.strip()).is_relative_to(target):
        raise Failure(f"paymobctl was imported from {where.strip()}, not from the wheel")
    shown = paymobctl("--version").strip()
    if shown != f"paymobctl {ctx.version}":
        raise Failure(f"`paymobctl --version` says {shown!r}, the package is {ctx.version}")
    paymobctl("hmac", "samples")
    started = time.monotonic()
    paymobctl("demo")
    log(f"    {shown}: --version, hmac samples, demo ({time.monotonic() - started:.1f} s) ok")


def step_suite(ctx: Context, minor: str) -> None:
    python = venv(ctx.pythons[minor], ctx.work / f"suite-{minor}")
    run([str(python), "-m", "pip", "install", "-q", "-e", ".[dev]"], timeout=900)
    selection = ["-m", "not slow"] if ctx.fast else []
    run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", *selection], stream=True)


def step_minimum(ctx: Context, minor: str) -> None:
    if not (ctx.tools / "uv").is_file():
        raise Failure("no uv (the build step failed)")
    python = venv(ctx.pythons[minor], ctx.work / "minimum")
    uv = [str(ctx.tools / "uv"), "pip"]
    project = pyproject()
    extras: dict[str, list[str]] = project.get("optional-dependencies", {})
    package = f".[{','.join(extras)}]" if extras else "."
    run([*uv, "install", "--python", str(python), "--resolution", "lowest-direct", "-e", package])
    listed = run([*uv, "list", "--python", str(python), "--format=json"], stdout_only=True)
    installed = {normalized(p["name"]): p["version"] for p in json.loads(listed)}
    requirements = [*project.get("dependencies", []), *(r for e in extras.values() for r in e)]
    bounds = lower_bounds(requirements)
    wrong = [
        f"{r} has no lower bound (>=)" for r in requirements if requirement_name(r) not in bounds
    ]
    for name, (bound, has_marker) in sorted(bounds.items()):
        got = installed.get(name)
        if got is None:
            if not has_marker:
                wrong.append(f"{name} not installed")
            continue
        log(f"    {name:<12} >={bound:<8} installed {got}")
        if not same_version(got, bound):
            wrong.append(f"{name}>={bound} resolved to {got}")
    if wrong:
        raise Failure(
            "lower bounds that are not what gets tested: "
            + "; ".join(wrong)
            + " — set each bound to the version that resolves (nothing older can be installed)"
        )
    # Every test, the slow ones too: the tunnel tests are what caught pyngrok's old versions.
    run([str(python), "scripts/check.py", "--all"], stream=True, timeout=1800)


# --- driver ---------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--fast",
        action="store_true",
        help="skip slow tests in the X.Y suites (CI runs them on 3.11)",
    )
    parser.add_argument("--work", type=Path, help="keep the build and venvs here")
    parser.add_argument(
        "--python", action="append", default=[], metavar="X.Y=PATH", help="an interpreter"
    )
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        choices=["build", "wheel", "suite", "minimum"],
        help="run only these steps (the build always runs first)",
    )
    args = parser.parse_args()

    project = pyproject()
    classifiers = list(project.get("classifiers", []))
    claimed = claimed_pythons(classifiers)
    if any("=" not in item for item in args.python):
        parser.error("--python takes X.Y=PATH, e.g. --python 3.12=/usr/bin/python3.12")
    given = dict(item.split("=", 1) for item in args.python)
    pythons = {minor: given.get(minor) or find_python(minor) for minor in claimed}
    absent = [minor for minor, path in pythons.items() if not path]
    if not claimed or absent:
        log(
            f"release checks: Python {', '.join(absent) or '3.X'} is claimed in pyproject.toml's "
            "classifiers but not found: install it (pyenv install X.Y) or pass --python X.Y=PATH"
        )
        return 2
    floor = str(project.get("requires-python", "")).removeprefix(">=")
    if floor != claimed[0]:
        log(
            f"release checks: requires-python says >={floor}, the classifiers start at {claimed[0]}"
        )
        return 2
    work = args.work or Path(tempfile.mkdtemp(prefix="paymobctl-release-"))
    work.mkdir(parents=True, exist_ok=True)
    ctx = Context(
        work=work,
        pythons={k: str(v) for k, v in pythons.items()},
        fast=args.fast,
        version=package_version(),
        classifiers=classifiers,
    )
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    steps: list[tuple[str, str, Callable[[], None]]] = [("build", "build", lambda: step_build(ctx))]
    steps += [(f"wheel {m}", "wheel", lambda m=m: step_wheel(ctx, m)) for m in claimed]
    steps += [(f"suite {m}", "suite", lambda m=m: step_suite(ctx, m)) for m in claimed if m != here]
    steps.append(
        (f"minimum versions {claimed[0]}", "minimum", lambda: step_minimum(ctx, claimed[0]))
    )

    log(f"release checks for paymobctl {ctx.version} on Python {', '.join(claimed)} in {work}")
    failed: list[str] = []
    total = time.monotonic()
    for name, kind, step in steps:
        if args.only and kind != "build" and kind not in args.only:
            continue
        log(f"==> {name}")
        started = time.monotonic()
        try:
            step()
        except (Failure, subprocess.TimeoutExpired, OSError, ValueError) as exc:
            log(str(exc))
            failed.append(name)
        status = "FAILED" if failed and failed[-1] == name else "ok"
        log(f"<== {name}: {status} in {time.monotonic() - started:.1f} s\n")
    if not args.work:
        shutil.rmtree(work, ignore_errors=True)
    elapsed = time.monotonic() - total
    if failed:
        log(f"release checks failed: {', '.join(failed)} ({elapsed:.0f} s)")
        return 1
    log(f"all release checks passed in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
