"""Import rules from STYLE.md: dependencies point inward, heavy libraries stay off the startup path."""

from __future__ import annotations

import ast
import functools
import sys
from pathlib import Path

import pytest

import paymobctl

PACKAGE = Path(paymobctl.__file__).parent


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(path: Path, *, top_level_only: bool = False) -> set[str]:
    return set(_imports(path, top_level_only))


@functools.cache  # every test walks the same modules: parse each once per run (read-only trees)
def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text())


@functools.cache
def _imports(path: Path, top_level_only: bool) -> frozenset[str]:
    tree = parsed(path)
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.If) and top_level_only:
            continue  # TYPE_CHECKING blocks
    return frozenset(names)


def internal(names: set[str]) -> set[str]:
    return {n for n in names if n == "paymobctl" or n.startswith("paymobctl.")}


def third_party(names: set[str]) -> set[str]:
    return {n.split(".")[0] for n in names if n.split(".")[0] not in sys.stdlib_module_names} - {
        "paymobctl"
    }


MODS = modules()


def test_pure_modules() -> None:
    assert internal(imports(MODS["paymobctl.errors"])) == set()
    assert third_party(imports(MODS["paymobctl.errors"])) == set()
    assert internal(imports(MODS["paymobctl.pans"])) <= {"paymobctl.documents"}
    assert internal(imports(MODS["paymobctl.documents"])) == set()
    assert third_party(imports(MODS["paymobctl.documents"])) == set()
    pure = {
        "paymobctl.errors",
        "paymobctl.models",
        "paymobctl.vocabulary",
        "paymobctl.documents",
        "paymobctl.pans",
    }
    assert internal(imports(MODS["paymobctl.vocabulary"])) == set()
    assert third_party(imports(MODS["paymobctl.vocabulary"])) == set()
    signing = {n for n in MODS if n == "paymobctl.signing" or n.startswith("paymobctl.signing.")}
    for name in ("paymobctl.models", "paymobctl.pans", *sorted(signing)):
        assert internal(imports(MODS[name])) <= pure | signing, name
        assert third_party(imports(MODS[name])) == set(), name
    # The signing dialects are pure too: a conformance suite reuses them without HTTP.
    pure = {"paymobctl", "paymobctl.errors", "paymobctl.models", "paymobctl.signing"}
    assert internal(imports(MODS["paymobctl.dialects"])) <= pure
    assert third_party(imports(MODS["paymobctl.dialects"])) == set()


@pytest.mark.parametrize(
    ("library", "allowed"),
    [
        ("sqlite3", ("paymobctl.store.",)),  # the store package's modules
        ("typer", ("paymobctl.cli",)),
        ("rich", ("paymobctl.cli",)),
        ("pyngrok", ("paymobctl.tunnel",)),
        # locust patches the process with gevent on import: only the Locust user class may.
        ("locust", ("paymobctl.locustfile",)),
        ("httptools", ("paymobctl.load",)),
    ],
)
def test_libraries_stay_in_their_module(library: str, allowed: tuple[str, ...]) -> None:
    for name, path in MODS.items():
        uses = any(n == library or n.startswith(library + ".") for n in imports(path))
        if uses:
            assert name.startswith(allowed), f"{name} imports {library}"


def test_the_store_is_used_through_its_package() -> None:
    """Other modules import ``paymobctl.store``, never one of its modules: the split is private."""
    for name, path in MODS.items():
        if not name.startswith("paymobctl.store"):
            inner = {d for d in internal(imports(path)) if d.startswith("paymobctl.store.")}
            assert not inner, f"{name} imports {inner}"


def test_emulator_and_receiver_never_import_each_other_or_the_client() -> None:
    for name, path in MODS.items():
        deps = internal(imports(path))
        if name.startswith("paymobctl.emulator"):
            assert not {
                d
                for d in deps
                if d.startswith(("paymobctl.receiver", "paymobctl.client", "paymobctl.cli."))
            }, name
        if name.startswith("paymobctl.receiver"):
            assert not {
                d
                for d in deps
                if d.startswith(("paymobctl.emulator", "paymobctl.client", "paymobctl.cli."))
            }, name


def test_core_never_imports_the_cli() -> None:
    for name, path in MODS.items():
        if not name.startswith("paymobctl.cli") and name != "paymobctl.__main__":
            assert not {
                d
                for d in internal(imports(path))
                if d == "paymobctl.cli" or d.startswith("paymobctl.cli.")
            }, name


def test_cli_startup_path_is_light() -> None:
    heavy = {"httpx", "starlette", "uvicorn", "pyngrok", "rich", "sqlite3", "tomllib", "tomli_w"}
    for name, path in MODS.items():
        if name.startswith(("paymobctl.cli", "paymobctl.signing.")) or name in (
            "paymobctl.config",
            "paymobctl.config_keys",
            "paymobctl.config_files",
            "paymobctl.models",
            "paymobctl.pans",
            "paymobctl.signing",
        ):
            top = {n.split(".")[0] for n in imports(path, top_level_only=True)}
            assert not (top & heavy), f"{name} imports {top & heavy} at module level"


def test_web_pages_stay_off_the_receiver_and_the_emulator_stays_off_the_inspector() -> None:
    """The receiver gets the inspector injected (a factory), never imports it; the shared web
    shell knows neither side (only the pure models); the sandbox's dashboard never reaches into the listener's pages."""
    for name, path in MODS.items():
        deps = internal(imports(path))
        if name == "paymobctl.receiver":
            assert not {d for d in deps if d.startswith(("paymobctl.inspector", "paymobctl.web"))}
        if name.startswith("paymobctl.web"):  # pure value helpers only (models.lenient_int)
            assert deps <= {"paymobctl.errors", "paymobctl.models", "paymobctl.vocabulary"}, name
        if name.startswith("paymobctl.emulator"):
            assert not {d for d in deps if d.startswith("paymobctl.inspector")}, name
        if name.startswith("paymobctl.inspector"):
            assert not {
                d for d in deps if d.startswith(("paymobctl.emulator", "paymobctl.receiver"))
            }, name


def package_imports(path: Path) -> set[str]:
    """:func:`imports`, with ``from paymobctl import x`` also counted as ``paymobctl.x``."""
    names = imports(path)
    for node in ast.walk(parsed(path)):
        if isinstance(node, ast.ImportFrom) and node.module == "paymobctl" and node.level == 0:
            names.update(f"paymobctl.{alias.name}" for alias in node.names)
    return names


CHECKLIST = {
    f"paymobctl.checklist{suffix}"
    for suffix in (
        "",
        ".results",
        ".registry",
        ".tls",
        ".probes",
        ".webhook",
        ".account",
        ".runner",
        ".history",
    )
}


def test_checklist_package_layers() -> None:
    """The checklist's results, registry and history are data (no HTTP, no sockets, no checks).
    Its probes go out through delivery.attempt (outbound's byte cap and total deadline, no
    redirect followed): only the account checks call outbound themselves, for the iframe page
    through the Paymob client's session; only tls and the runner open sockets."""
    found = {name: path for name, path in MODS.items() if name.startswith("paymobctl.checklist")}
    assert set(found) == CHECKLIST
    data = {"paymobctl.checklist.results", "paymobctl.diagnosis", "paymobctl.store"}
    for name in ("results", "registry", "history"):
        deps = package_imports(found[f"paymobctl.checklist.{name}"])
        assert internal(deps) <= data, name
        assert third_party(deps) == set(), name
    for name, path in found.items():
        deps = package_imports(path)
        if "paymobctl.outbound" in deps:
            assert name == "paymobctl.checklist.account", name
        if deps & {"socket", "ssl"}:
            assert name in ("paymobctl.checklist.tls", "paymobctl.checklist.runner"), name


def test_the_sandbox_rules_know_no_http_framework() -> None:
    """``emulator.state`` and its parts are rules only: the routes (``app``, ``api``, ``hosted``,
    ``admin``, ``routing``, ``dashboard``) translate HTTP, the notifier delivers."""
    rules = (
        "records", "validation", "persistence", "context", "auth", "orders", "payments",
        "ledger", "intentions", "deliveries", "state", "cards",
    )  # fmt: skip
    for short in rules:
        name = f"paymobctl.emulator.{short}"
        assert name in MODS, name
        assert not third_party(imports(MODS[name])) & {"starlette", "uvicorn", "httpx"}, name
        assert not {
            d
            for d in internal(imports(MODS[name]))
            if d.startswith("paymobctl.emulator.") and d.rsplit(".", 1)[1] not in rules
        }, name


# What `paymobctl hmac verify` loads, run for real in a fresh interpreter (scripts/bench_startup.py
# measures its start-up against `import typer`): the signing core, the shipped samples and the
# store that records the check; no HTTP client, no rich, no configuration files, no decimal, and
# none of the store's record dataclasses (creating a dataclass costs ~4 M instructions).
HMAC_VERIFY_MODULES = {
    "paymobctl",
    "paymobctl.cli",
    "paymobctl.cli.app",
    "paymobctl.cli.hmac_cmd",
    "paymobctl.cli.options",
    "paymobctl.cli.output",
    "paymobctl.cli.runtime",
    "paymobctl.documents",
    "paymobctl.errors",
    "paymobctl.models",
    "paymobctl.pans",
    "paymobctl.paths",
    "paymobctl.samples",
    "paymobctl.signing",
}
HMAC_VERIFY_NEVER = (
    "httpx", "starlette", "uvicorn", "rich", "tomllib", "tomli_w", "decimal", "asyncio", "ssl",
    "socket", "zoneinfo", "paymobctl.config", "paymobctl.client", "paymobctl.callbacks",
    "paymobctl.store.records", "paymobctl.signing.diagnosis", "paymobctl.vocabulary",
    "hashlib", "hmac", "_hashlib",  # libcrypto: signing uses the interpreter's own SHA-512
)  # fmt: skip


def test_hmac_verify_loads_only_what_it_uses() -> None:
    import json
    import subprocess

    probe = (
        "import json, sys\n"
        "from paymobctl.cli import main\n"
        "code = main(['hmac', 'verify', '--sample', 'docs-transaction'])\n"
        "print(json.dumps([code, sorted(sys.modules)]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    code, loaded = json.loads(done.stdout.splitlines()[-1])
    assert code == 0
    ours = {name for name in loaded if name.split(".")[0] == "paymobctl"}
    # the store (sqlite3) records the check, and may be a package of modules
    packages = ("paymobctl.store", "paymobctl.signing.")  # their inner layout is their own
    assert ours - {n for n in ours if n.startswith(packages)} == HMAC_VERIFY_MODULES
    heavy = {
        name
        for name in loaded
        if name in HMAC_VERIFY_NEVER or name.startswith(tuple(f"{m}." for m in HMAC_VERIFY_NEVER))
    }
    assert heavy == set()


def public_definitions() -> dict[str, bool]:
    """Every public module-level function and class as ``module:name``, and whether it has a
    docstring."""
    found = {}
    for name, path in MODS.items():
        for node in parsed(path).body:
            definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef
            if isinstance(node, definition) and not node.name.startswith("_"):
                found[f"{name}:{node.name}"] = ast.get_docstring(node) is not None
    return found


def test_public_definitions_have_a_docstring() -> None:
    missing = sorted(name for name, documented in public_definitions().items() if not documented)
    assert missing == [], "add a one-line docstring saying what it is for"
