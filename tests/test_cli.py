"""The command-line surface: help everywhere, version, entry points, global options, hmac."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.main import get_command

from paymobctl import __version__, samples
from paymobctl.cli.app import app
from paymobctl.store import Store

from .conftest import run_cli, write_config
from .test_signing import DOCS_HMAC, DOCS_SECRET, REF_SECRET, REF_TXN_HMAC


def all_command_paths() -> list[list[str]]:
    paths: list[list[str]] = []

    def walk(cmd: Any, prefix: list[str]) -> None:
        paths.append(prefix)
        ctx = cmd.context_class(cmd, info_name=prefix[-1] if prefix else "paymobctl")
        for name in cmd.list_commands(ctx) if hasattr(cmd, "list_commands") else []:
            walk(cmd.get_command(ctx, name), [*prefix, name])

    walk(get_command(app), [])
    return paths


@pytest.mark.parametrize("path", all_command_paths(), ids=lambda p: " ".join(p) or "root")
def test_help_on_every_command(path: list[str]) -> None:
    result = run_cli(*path, "--help")
    assert result.code == 0, result.stderr
    assert "Usage:" in result.stdout
    if path and path[-1] not in ("hmac", "config") and len(path) > 1:
        for option in ("--profile", "--config", "--db", "--json", "--no-color"):
            assert option in result.stdout, f"{option} missing from {' '.join(path)} --help"


def test_version() -> None:
    result = run_cli("--version")
    assert result.code == 0 and result.stdout.strip() == f"paymobctl {__version__}"


@pytest.mark.slow
def test_python_dash_m_and_console_script(hermetic: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "paymobctl", "--version"],
        capture_output=True,
        text=True,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 0 and __version__ in out.stdout
    script = Path(sys.executable).with_name("paymobctl")
    if script.exists():
        out = subprocess.run(
            [str(script), "hmac", "verify", "--sample", "docs-transaction"],
            capture_output=True,
            text=True,
            check=False,
            stdin=subprocess.DEVNULL,
        )
        assert out.returncode == 0 and "valid" in out.stdout


def test_completion_is_offered() -> None:
    assert "--install-completion" in run_cli("--help").stdout


def test_unknown_option_is_one_line_exit_2() -> None:
    result = run_cli("hmac", "verify", "--bogus")
    assert result.code == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "--bogus" in result.stderr and "--help" in result.stderr


def test_global_options_before_or_after_the_command(tmp_path: Path) -> None:
    db1, db2 = tmp_path / "1.db", tmp_path / "2.db"
    assert run_cli("--db", str(db1), "hmac", "verify", "--sample", "docs-transaction").code == 0
    assert (
        run_cli("hmac", "verify", "--sample", "docs-transaction", "--db", str(db2), "--json").code
        == 0
    )
    assert len(Store(db1).hmac_checks()) == 1 and len(Store(db2).hmac_checks()) == 1
    before = run_cli("--json", "hmac", "sign", "--sample", "docs-transaction")
    after = run_cli("hmac", "sign", "--sample", "docs-transaction", "--json")
    assert (
        before.json()
        == after.json()
        == {"type": "TRANSACTION", "hmac": DOCS_HMAC, "experimental": False}
    )


def test_piped_output_is_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    result = run_cli("hmac", "verify", "--sample", "docs-transaction", "--explain")
    assert "\x1b[" not in result.output
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in run_cli("config", "show").output


# --- hmac ---------------------------------------------------------------------------------------


def write_secret(path: Path, secret: str) -> Path:
    path.write_text(secret + "\n")
    return path


def test_verify_docs_vector_from_file_with_secret_file(hermetic: Path) -> None:
    body = samples.load("docs-transaction").body
    (hermetic / "cb.json").write_text(json.dumps(body))
    secret = write_secret(hermetic / "secret", DOCS_SECRET)
    ok = run_cli("hmac", "verify", "cb.json", "--hmac", DOCS_HMAC, "--secret-file", str(secret))
    assert ok.code == 0 and "valid TRANSACTION HMAC" in ok.stdout
    bad = run_cli("hmac", "verify", "cb.json", "--hmac", "0" * 128, "--secret-file", str(secret))
    assert bad.code == 1 and "INVALID" in bad.stdout and "--explain" in bad.stderr
    url = f"https://shop.example/api/payments/webhook/?hmac={DOCS_HMAC}"
    assert (
        run_cli("hmac", "verify", "cb.json", "--url", url, "--secret-file", str(secret)).code == 0
    )


def test_verify_explain_confirms_docs_vector() -> None:
    result = run_cli("hmac", "verify", "--sample", "docs-transaction", "--explain")
    assert result.code == 0
    assert "signed string: 1000002024-06-13T11:33:44.592345EGPfalsefalse192036465" in result.stdout
    assert DOCS_HMAC in result.stdout and "result: VALID" in result.stdout
    assert DOCS_SECRET not in result.output


def test_verify_json_and_stdin(hermetic: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMOB_HMAC_SECRET", DOCS_SECRET)
    body = json.dumps(samples.load("docs-transaction").body)
    result = run_cli("hmac", "verify", "-", "--hmac", DOCS_HMAC, "--json", stdin=body)
    data = result.json()
    assert result.code == 0 and data["valid"] is True and data["computed"] == DOCS_HMAC
    assert data["secret"].startswith("****") and DOCS_SECRET not in result.output
    assert len(data["fields"]) == 20 and data["fields"][13]["name"] == "order.id"
    implicit = run_cli("hmac", "sign", stdin=body)
    assert implicit.code == 0 and implicit.stdout.strip() == DOCS_HMAC


def test_verify_get_redirect_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMOB_HMAC_SECRET", REF_SECRET)
    url = samples.load("reference-redirect").url
    assert run_cli("hmac", "verify", "--url", url).code == 0
    assert run_cli("hmac", "sign", "--url", url).stdout.strip() == REF_TXN_HMAC
    tampered = url.replace("amount_cents=25000", "amount_cents=25001")
    result = run_cli("hmac", "verify", "--url", tampered, "--explain")
    assert result.code == 1 and "[wrong-secret]" in result.stdout


def test_wrong_secret_explained(monkeypatch: pytest.MonkeyPatch, hermetic: Path) -> None:
    secret = write_secret(hermetic / "s", "the-live-secret-not-the-test-one")
    result = run_cli(
        "hmac", "verify", "--sample", "docs-transaction", "--secret-file", str(secret), "--explain"
    )
    assert (
        result.code == 1
        and "another HMAC secret" in result.stdout
        and "test and live" in result.stdout
    )


def test_hmac_input_errors(hermetic: Path) -> None:
    cases = [
        (("hmac", "verify", "missing.json"), "missing.json: no such file"),
        (("hmac", "verify"), "nothing to sign or verify"),
        (("hmac", "verify", "--url", "https://shop.example/return"), "no query string"),
        (
            ("hmac", "sign", "--sample", "docs-transaction", "--url", "https://x/?a=1"),
            "cannot be combined",
        ),
        (("hmac", "verify", "--sample", "nope"), "unknown sample 'nope'"),
        (
            ("hmac", "verify", "--sample", "docs-transaction", "--secret-file", "nope"),
            "cannot read the secret file",
        ),
        (("hmac", "verify", "--type", "WHAT", "x.json"), "WHAT"),
    ]
    (hermetic / "x.json").write_text("{}")
    for args, needle in cases:
        result = run_cli(*args)
        assert result.code == 2, (args, result.output)
        assert needle in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.output
    (hermetic / "bad.json").write_text("{nope")
    result = run_cli("hmac", "verify", "bad.json")
    assert result.code == 2 and "not valid JSON" in result.stderr
    (hermetic / "empty-secret").write_text("\n")
    result = run_cli("hmac", "sign", "x.json", "--secret-file", "empty-secret")
    assert result.code == 2 and "secret file is empty" in result.stderr


DELIVERY_BODY = {
    "type": "DELIVERY_STATUS",
    "obj": {
        "order_id": 1,
        "order_delivery_status": "Delivered",
        "merchant_id": 2,
        "merchant_name": "Shop",
        "updated_at": "2025-01-01T00:00:00",
    },
}


def test_delivery_status_is_flagged_experimental_everywhere(hermetic: Path) -> None:
    (hermetic / "delivery.json").write_text(json.dumps(DELIVERY_BODY))
    secret = str(write_secret(hermetic / "secret", "s"))
    signed = run_cli("hmac", "sign", "delivery.json", "--secret-file", secret)
    assert signed.code == 0 and re.fullmatch(r"[0-9a-f]{128}\n", signed.stdout)
    assert "warning: DELIVERY_STATUS signing is experimental" in signed.stderr
    verified = run_cli(
        "hmac", "verify", "delivery.json", "--hmac", signed.stdout.strip(), "--secret-file", secret
    )
    assert verified.code == 0 and "experimental" in verified.stderr
    # A TRANSACTION is not experimental: no warning.
    plain = run_cli("hmac", "sign", "--sample", "docs-transaction")
    assert plain.code == 0 and plain.stderr == ""


def test_sign_explain_never_complains_about_a_missing_hmac(hermetic: Path) -> None:
    explained = run_cli("--json", "hmac", "sign", "--sample", "docs-transaction", "--explain")
    assert explained.code == 0
    assert "no-hmac" not in [d["code"] for d in explained.json()["diagnoses"]]
    assert (
        "never a header"
        not in run_cli("hmac", "sign", "--sample", "docs-transaction", "--explain").output
    )
    # ...while verifying without one still says where Paymob puts it.
    (hermetic / "cb.json").write_text(json.dumps(samples.load("docs-transaction").body))
    missing = run_cli(
        "--json",
        "hmac",
        "verify",
        "cb.json",
        "--explain",
        "--secret-file",
        str(write_secret(hermetic / "secret", DOCS_SECRET)),
    )
    assert missing.code == 1 and "no-hmac" in [d["code"] for d in missing.json()["diagnoses"]]


def test_token_sample_and_type_override() -> None:
    result = run_cli("hmac", "verify", "--sample", "reference-token", "--json")
    assert result.code == 0 and result.json()["type"] == "TOKEN"
    wrong = run_cli(
        "hmac", "verify", "--sample", "reference-token", "--type", "TRANSACTION", "--explain"
    )
    assert wrong.code == 1 and "[wrong-type]" in wrong.stdout


def test_samples_listing() -> None:
    listing = run_cli("hmac", "samples", "--json").json()
    by_name = {s["name"]: s for s in listing}
    assert set(by_name) == {
        "docs-transaction",
        "docs-token",
        "docs-redirect",
        "reference-transaction",
        "reference-token",
        "reference-redirect",
    }
    # Real ones say where they came from; invented ones say so.
    assert {n for n, s in by_name.items() if s["origin"] == "real"} == {
        "docs-transaction",
        "docs-token",
        "docs-redirect",
    }
    assert all("Paymob developer docs" in by_name[n]["source"] for n in by_name if n[:4] == "docs")
    assert by_name["docs-transaction"]["verifiable"] and not by_name["docs-token"]["verifiable"]
    table = run_cli("hmac", "samples")
    assert table.code == 0 and "invented" in table.stdout and "provenance:" in table.stdout


def test_every_verifiable_sample_verifies_and_the_others_say_why_not() -> None:
    for name in samples.names():
        result = run_cli("hmac", "verify", "--sample", name)
        if samples.load(name).verifiable:
            assert result.code == 0 and "valid" in result.stdout, (name, result.stderr)
        else:
            assert result.code == 2 and "no published secret" in result.stderr
            assert "Traceback" not in result.stderr


def test_hmac_checks_are_recorded_without_secrets(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    run_cli("--db", str(db), "hmac", "verify", "--sample", "docs-transaction")
    run_cli(
        "--db",
        str(db),
        "hmac",
        "verify",
        "--sample",
        "docs-transaction",
        "--secret-file",
        "/dev/null",
    )
    checks = Store(db).hmac_checks()
    assert [c.valid for c in checks] == [
        True
    ]  # the second one failed before verifying (empty secret)
    assert DOCS_SECRET.encode() not in db.read_bytes()


def test_lazy_group_help_matches_the_modules() -> None:
    import importlib

    from paymobctl.cli.app import GROUPS

    for name, (module, attribute, short) in GROUPS.items():
        sub = getattr(importlib.import_module(module), attribute)
        if not sub.info.help:  # a single command: its help is the command's docstring
            continue
        assert sub.info.help, name
        first = short.split()[0].strip(":,.").lower()
        assert first in sub.info.help.lower() or name == "sandbox", (name, short)


def test_start_up_pauses_the_collector_only_until_the_command_runs(tmp_path: Path) -> None:
    """A process of its own loads with the collector off (start-up speed) and runs the command
    with it on, start-up's objects frozen; main() called with arguments leaves gc alone."""
    probe = (
        "import gc, json, sys\n"
        "import paymobctl.signing as signing\n"
        "seen = []\n"
        "real = signing.verify\n"
        "def spy(*a, **k):\n"
        "    seen.append(gc.isenabled())\n"
        "    return real(*a, **k)\n"
        "signing.verify = spy\n"
        "sys.argv = ['paymobctl', 'hmac', 'verify', '--sample', 'docs-transaction']\n"
        "from paymobctl.cli import main\n"
        "code = main()\n"
        "frozen = gc.get_freeze_count()\n"
        "gc.unfreeze(); gc.disable()\n"
        "again = main(['hmac', 'verify', '--sample', 'docs-transaction'])\n"
        "print(json.dumps([code, seen, frozen > 1000, again, gc.isenabled()]))\n"
    )
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data")}
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env,
        stdin=subprocess.DEVNULL, timeout=60,
    )  # fmt: skip
    code, seen, frozen, again, enabled_after = json.loads(done.stdout.splitlines()[-1])
    assert (code, again) == (0, 0)
    assert seen == [True, False]  # on while the command ran; the second call left it off
    assert frozen and enabled_after is False


@pytest.mark.slow
def test_root_help_does_not_import_command_groups() -> None:
    probe = (
        "import sys; from paymobctl.cli import main; main({args}); "
        "print(sorted(m for m in sys.modules if m.startswith('paymobctl.cli.') and m.endswith('_cmd')), "
        "'httpx' in sys.modules, 'rich' in sys.modules)"
    )

    def loaded(args: list[str]) -> str:
        out = subprocess.run(
            [sys.executable, "-c", probe.format(args=args)],
            capture_output=True,
            text=True,
            check=True,
            stdin=subprocess.DEVNULL,
        )
        return out.stdout.strip().splitlines()[-1]

    assert loaded(["--help"]) == "[] False False"
    assert loaded(["hmac", "verify", "--help"]) == "['paymobctl.cli.hmac_cmd'] False False"


@pytest.mark.slow
def test_broken_pipe_is_not_an_error(tmp_path: Path) -> None:
    from paymobctl.store import NewEvent

    db = tmp_path / "s.db"
    with Store(db) as store:
        for n in range(60):  # ~300 KB of NDJSON: far more than a pipe buffer
            store.record_event(
                NewEvent(
                    method="POST",
                    path="/w",
                    query="",
                    headers=[],
                    body=b"x" * 5000,
                    remote=None,
                    kind="UNKNOWN",
                    status=400,
                    verdict="n/a",
                    problem=str(n),
                )
            )
    script = Path(sys.executable).with_name("paymobctl")
    command = (
        f"'{script}' --db '{db}' events export | head -c 10 > /dev/null; echo ${{PIPESTATUS[0]}}"
    )
    out = subprocess.run(["bash", "-c", command], capture_output=True, text=True, check=False)
    assert out.stdout.strip() == "0", out.stderr
    assert "Traceback" not in out.stderr


def test_since_overflow() -> None:
    result = run_cli("events", "list", "--since", "99999999999d")
    assert result.code == 2 and "shorter duration" in result.stderr


def test_ctrl_c_is_one_line_exit_130(monkeypatch: pytest.MonkeyPatch) -> None:
    from paymobctl import signing

    def interrupted(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    monkeypatch.setattr(signing, "explain", interrupted)
    result = run_cli("hmac", "sign", "--sample", "docs-transaction")
    assert result.code == 130 and "error: interrupted" in result.stderr
    assert "Traceback" not in result.output and "Aborted" not in result.output


def test_tables_keep_ids_whole_and_fit_80_columns() -> None:
    import io

    from rich.console import Console

    from paymobctl.cli.output import Output

    buffer = io.StringIO()
    out = Output(stdout=buffer)
    out.is_terminal = True
    out._console = Console(file=buffer, width=80, no_color=True, highlight=False)
    ids = ["999900000000123", "pi_test_bd49c0ffee1234", "refunded"]
    out.table(
        ["id", "intention", "status", "reason", "created"],
        [(*ids, "Do not honour — the issuer refused it " * 3, "2026-12-02 10:40:00+02:00")],
    )
    lines = buffer.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80
    text = buffer.getvalue()
    assert all(value in text for value in ids)  # whole, on one line


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_slow_calls_show_a_spinner_on_a_terminal_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    from paymobctl.cli import output
    from paymobctl.client import PaymobClient

    monkeypatch.setattr(output, "SPINNER_DELAY", 0.0)
    for tty, expected in ((True, True), (False, False)):
        err = _Terminal() if tty else io.StringIO()
        out = output.Output(stdout=io.StringIO(), stderr=err)
        answers = iter([httpx.Response(503), httpx.Response(200, json={"id": 5})])

        def answer(request: httpx.Request, answers: Any = answers) -> httpx.Response:
            return next(answers)  # type: ignore[no-any-return]

        client = PaymobClient(
            httpx.Client(transport=httpx.MockTransport(answer)),
            base_url="https://accept.paymob.com",
            api_key=None,
            sleep=lambda s: time.sleep(0.05),
            progress=out.waiting,
        )
        client._token = ("t", float("inf"))
        assert client.transaction(5) == {"id": 5}
        shown = err.getvalue()
        assert ("retrieving transaction 5 (retry 1)" in shown) is expected, shown
    long = output.Output(stderr=_Terminal()).spinner_text("x" * 200)
    assert len(long) <= 78 and long.endswith("…")


def complete(words: str) -> list[str]:
    """What `paymobctl` completes for ``words`` (bash protocol, as the installed script asks)."""
    import os

    env = {
        **os.environ,
        "_PAYMOBCTL_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split(" ")) - 1),
    }
    script = Path(sys.executable).with_name("paymobctl")
    done = subprocess.run(
        [str(script)], check=False, env=env, capture_output=True, text=True, timeout=60
    )
    return done.stdout.split()


@pytest.mark.slow
def test_completion_of_profiles_flows_outcomes_and_sources(config_file: Path) -> None:
    write_config(
        config_file, '[profiles.shop]\nmode = "test"\n[profiles.shop-live]\nmode = "live"\n'
    )
    assert complete("paymobctl deposit --profile sh") == ["shop", "shop-live"]
    assert "sandbox" in complete("paymobctl --profile ")
    assert complete("paymobctl deposit --flow ") == ["legacy", "intention"]
    assert complete("paymobctl deposit --flow in") == ["intention"]
    assert {"approved", "declined", "pending"} <= set(
        complete("paymobctl simulate transaction --outcome ")
    )
    assert set(complete("paymobctl simulate transaction --source ")) == {"card", "wallet", "kiosk"}


def test_times_are_local_with_offset_and_json_keeps_iso(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paymobctl.cli.output import local_time
    from paymobctl.store import Store

    monkeypatch.setenv("TZ", "Africa/Cairo")  # UTC+2, no DST in December
    time.tzset()
    try:
        assert local_time("2026-12-02T10:40:00.123456+00:00") == "2026-12-02 12:40:00+02:00"
        assert local_time("2026-12-02T10:40:00.123+00:00", clock_only=True) == "12:40:00.123+02:00"
        with Store(tmp_path / "t.db") as store:
            store.create_deposit(
                profile="sandbox", mode="test", flow="legacy", base_url="http://x", order_id=1,
                merchant_order_id=None, intention_id=None, amount_cents=100, currency="EGP",
                checkout_url="http://x/c", expires_at=None, save_card=False,
            )  # fmt: skip
        listed = run_cli("--db", str(tmp_path / "t.db"), "deposits", "list")
        assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\+02:00", listed.stdout), listed.stdout
        raw = run_cli("--db", str(tmp_path / "t.db"), "deposits", "list", "--json").json()
        assert raw[0]["created_at"].endswith("+00:00") and "T" in raw[0]["created_at"]
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
