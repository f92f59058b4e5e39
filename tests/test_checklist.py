"""`paymobctl checklist` against real local targets: TLS variants, backend mistakes, the API."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import trustme
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from paymobctl import checklist, config
from paymobctl.checklist import account
from paymobctl.emulator import create_app as create_sandbox
from paymobctl.receiver import create_app as create_receiver
from paymobctl.sandbox_profile import SANDBOX
from paymobctl.store import Store

from . import django_site
from .conftest import run_cli
from .inprocess import in_process
from .servers import Recorder, free_port, serve

WEBHOOK = "/api/payments/webhook/"


def checks(result: Any) -> dict[str, dict[str, Any]]:
    return {c["id"]: c for c in result.json()["checks"]}


def statuses(result: Any, *ids: str) -> list[str]:
    found = checks(result)
    return [found[i]["status"] for i in ids]


@pytest.fixture
def profile(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sandbox profile, with the Django site's HMAC secret and no API checks by default."""
    monkeypatch.setenv("PAYMOB_HMAC_SECRET", django_site.SECRET)


@pytest.fixture(scope="module")
def django_url() -> Iterator[str]:
    with in_process(django_site.application(), lifespan="off") as base:
        yield base


def run(url: str, *args: str) -> Any:
    return run_cli("checklist", url, "--no-api", "--timeout", "5", "--json", *args)


# --- backends -------------------------------------------------------------------------------------


def test_correct_django_backend(django_url: str, profile: None) -> None:
    result = run(f"{django_url}/good", "--response-path", "/api/payments/response/")
    assert result.code == 0, result.output
    assert (
        statuses(
            result,
            "PMB-NET-001",
            "PMB-NET-002",
            "PMB-CSRF-001",
            "PMB-HMAC-001",
            "PMB-HMAC-002",
            "PMB-HMAC-003",
            "PMB-HMAC-004",
            "PMB-DBG-001",
            "PMB-RESP-001",
        )
        == ["pass"] * 9
    )
    assert (
        checks(result)["PMB-TLS-001"]["status"] == "fail"
    )  # plain http, a local target: a warning
    assert checks(result)["PMB-TLS-001"]["severity"] == "warning"
    data = result.json()
    assert data["probe"]["moves_money"] is False and data["exit_code"] == 0


def test_missing_csrf_exempt_is_critical(django_url: str, profile: None) -> None:
    result = run(f"{django_url}/nocsrf")
    assert result.code == 1
    csrf = checks(result)["PMB-CSRF-001"]
    assert csrf["status"] == "fail" and csrf["severity"] == "critical"
    assert "CSRF verification failed" in csrf["detail"] and "@csrf_exempt" in csrf["hint"]


def test_backend_ignoring_the_hmac(django_url: str, profile: None) -> None:
    result = run(f"{django_url}/nohmac")
    assert result.code == 1
    found = checks(result)
    assert found["PMB-HMAC-001"]["status"] == found["PMB-HMAC-002"]["status"] == "fail"
    assert (
        found["PMB-HMAC-001"]["severity"] == "critical"
        and "not enforced" in found["PMB-HMAC-001"]["detail"]
    )


def test_backend_crashing_without_hmac(django_url: str, profile: None) -> None:
    result = run(f"{django_url}/crash")
    assert result.code == 1
    found = checks(result)
    assert (
        found["PMB-HMAC-004"]["status"] == "fail" and found["PMB-HMAC-004"]["severity"] == "error"
    )
    assert found["PMB-HMAC-003"]["status"] == "pass"  # a signed callback works
    assert found["PMB-NET-002"]["status"] == "pass"


def test_debug_on(django_url: str, profile: None) -> None:
    result = run(f"{django_url}/debug")
    found = checks(result)
    assert (
        found["PMB-DBG-001"]["status"] == "fail"
        and "Django DEBUG page" in found["PMB-DBG-001"]["detail"]
    )
    assert "DEBUG=False" in found["PMB-DBG-001"]["hint"]
    assert result.code == 1
    quiet = run(f"{django_url}/good")
    assert checks(quiet)["PMB-DBG-001"]["status"] == "pass"


def test_wrong_secret_both_rejected(django_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMOB_HMAC_SECRET", "not-the-deployments-secret")
    result = run(f"{django_url}/good")
    found = checks(result)["PMB-HMAC-003"]
    assert result.code == 1 and found["status"] == "fail"
    assert "secret probably differs" in found["detail"] and "PAYMOB_HMAC_SECRET" in found["hint"]


def test_unrouted_webhook_path(django_url: str, profile: None) -> None:
    result = run(f"{django_url}/good", "--webhook-path", "/api/nothing/here/")
    found = checks(result)["PMB-NET-002"]
    assert found["status"] == "fail" and "404" in found["detail"]


def test_probes_are_declined_unknown_order_transactions(profile: None) -> None:
    recorder = Recorder()
    with in_process(recorder.app()) as base:
        run(base, "--response-path", "/r/")
    posts = [json.loads(r.body) for r in recorder.requests if r.method == "POST" and r.body]
    assert len(posts) == 4  # unsigned, tampered, signed, field-shift forgery (PMB-HMAC-005)
    for body in posts:
        obj = body["obj"]
        assert body["type"] == "TRANSACTION" and obj["success"] is False and obj["pending"] is False
        assert obj["data"]["txn_response_code"] == "DECLINED"
        assert obj["is_live"] is False and obj["amount_cents"] <= 100_100
        if isinstance(obj["order"], int):  # the forgery names its order as a bare integer
            assert obj["order"] >= 999_900_000_000
            continue
        assert obj["order"]["id"] >= 999_900_000_000
        assert obj["order"]["merchant_order_id"].startswith("paymobctl-probe-")
    gets = [r for r in recorder.requests if r.method == "GET" and r.path == "/r/"]
    assert gets and "success=false" in gets[0].query


def test_unreachable_target_exits_3() -> None:
    result = run_cli("checklist", f"http://127.0.0.1:{free_port()}", "--no-api", "--timeout", "2")
    assert result.code == 3 and "unreachable" in result.stdout
    assert "PMB-NET-001" in result.stdout


def test_invalid_arguments() -> None:
    assert run_cli("checklist", "not a url").code == 2
    assert run_cli("checklist", "https://x.example", "--fail-level", "loud").code == 2
    assert run_cli("checklist", "https://x.example", "--ca-bundle", "/nope.pem").code == 2


# --- TLS ------------------------------------------------------------------------------------------


def tls_app() -> Starlette:
    """A correct webhook (HMAC verified with the profile fixture's secret), served with HSTS."""
    from paymobctl import signing
    from paymobctl.models import CallbackKind

    async def endpoint(request: Request) -> Response:
        response: Response
        if request.method == "POST":
            body = json.loads(await request.body())
            if not django_site._shape_ok(CallbackKind.TRANSACTION, body.get("obj")):
                return JSONResponse({"detail": "Malformed signed fields"}, status_code=400)
            valid = signing.verify(
                CallbackKind.TRANSACTION,
                body.get("obj", {}),
                django_site.SECRET,
                request.query_params.get("hmac"),
            ).valid
            response = JSONResponse(
                {"detail": "ok" if valid else "Invalid HMAC Signature"},
                status_code=200 if valid else 401,
            )
        else:
            response = PlainTextResponse("home")
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
        return response

    return Starlette(routes=[Route("/{path:path}", endpoint, methods=["GET", "POST"])])


def https(
    tmp_path: Path, ca: trustme.CA, *identities: str, not_after: datetime | None = None
) -> Any:
    cert = ca.issue_cert(
        *identities, not_before=datetime.now(UTC) - timedelta(days=60), not_after=not_after
    )
    certfile, keyfile = tmp_path / f"c{id(cert)}.pem", tmp_path / f"k{id(cert)}.pem"
    cert.private_key_pem.write_to_path(str(keyfile))
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    return serve(tls_app(), ssl_certfile=str(certfile), ssl_keyfile=str(keyfile))


@pytest.fixture
def ca(tmp_path: Path) -> tuple[trustme.CA, Path]:
    authority = trustme.CA()
    bundle = tmp_path / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    return authority, bundle


def tls_run(base: str, bundle: Path | None, *args: str) -> Any:
    url = base.replace("http://", "https://")
    extra = ["--ca-bundle", str(bundle)] if bundle else []
    return run_cli("checklist", url, "--no-api", "--timeout", "5", "--json", *extra, *args)


def test_tls_trusted(tmp_path: Path, ca: tuple[trustme.CA, Path], profile: None) -> None:
    authority, bundle = ca
    with https(
        tmp_path, authority, "127.0.0.1", not_after=datetime.now(UTC) + timedelta(days=90)
    ) as base:
        result = tls_run(base, bundle)
    found = checks(result)
    for check in (
        "PMB-TLS-001",
        "PMB-TLS-002",
        "PMB-TLS-003",
        "PMB-TLS-004",
        "PMB-TLS-005",
        "PMB-TLS-006",
        "PMB-TLS-008",
    ):
        assert found[check]["status"] == "pass", (check, found[check])
    assert found["PMB-TLS-005"]["data"]["days"] >= 88
    assert found["PMB-TLS-006"]["detail"] in ("negotiated TLSv1.2", "negotiated TLSv1.3")


def test_tls_expired(tmp_path: Path, ca: tuple[trustme.CA, Path], profile: None) -> None:
    authority, bundle = ca
    with https(
        tmp_path, authority, "127.0.0.1", not_after=datetime.now(UTC) - timedelta(days=2)
    ) as base:
        result = tls_run(base, bundle)
    found = checks(result)
    assert found["PMB-TLS-002"]["status"] == "pass"  # the chain itself is fine
    assert (
        found["PMB-TLS-004"]["status"] == "fail" and found["PMB-TLS-004"]["severity"] == "critical"
    )
    assert "expired" in found["PMB-TLS-004"]["detail"]
    assert result.code == 1


@pytest.mark.parametrize(("days", "severity"), [(10, "warning"), (3, "error")])
def test_tls_expiring_soon(
    tmp_path: Path, ca: tuple[trustme.CA, Path], profile: None, days: int, severity: str
) -> None:
    authority, bundle = ca
    with https(
        tmp_path,
        authority,
        "127.0.0.1",
        not_after=datetime.now(UTC) + timedelta(days=days, hours=1),
    ) as base:
        result = tls_run(base, bundle)
    found = checks(result)["PMB-TLS-005"]
    assert (
        found["status"] == "fail"
        and found["severity"] == severity
        and found["data"]["days"] == days
    )
    assert result.code == (1 if severity == "error" else 0)


def test_tls_wrong_hostname(tmp_path: Path, ca: tuple[trustme.CA, Path], profile: None) -> None:
    authority, bundle = ca
    with https(tmp_path, authority, "shop.example") as base:
        result = tls_run(base, bundle)
    found = checks(result)
    assert found["PMB-TLS-002"]["status"] == "pass"
    assert (
        found["PMB-TLS-003"]["status"] == "fail"
        and "not valid for 127.0.0.1" in found["PMB-TLS-003"]["detail"]
    )
    assert found["PMB-HMAC-003"]["status"] == "pass"  # the application is still checked


def test_tls_self_signed(tmp_path: Path, ca: tuple[trustme.CA, Path], profile: None) -> None:
    authority, _ = ca
    with https(tmp_path, authority, "127.0.0.1") as base:
        result = tls_run(base, None)  # the test CA is not trusted
    found = checks(result)
    assert (
        found["PMB-TLS-002"]["status"] == "fail" and found["PMB-TLS-002"]["severity"] == "critical"
    )
    assert "certificate" in found["PMB-TLS-002"]["detail"]
    assert found["PMB-TLS-004"]["status"] == "skip"
    assert result.code == 1


def test_http_redirects_to_https(
    tmp_path: Path, ca: tuple[trustme.CA, Path], profile: None
) -> None:
    authority, bundle = ca

    async def redirect(request: Request) -> Response:
        return RedirectResponse(f"https://127.0.0.1{request.url.path}", status_code=301)

    async def plain(request: Request) -> Response:
        del request
        return PlainTextResponse("hello over http")

    with https(tmp_path, authority, "127.0.0.1") as base:
        for endpoint, expected in ((redirect, "pass"), (plain, "fail")):
            with in_process(Starlette(routes=[Route("/{p:path}", endpoint)])) as http_base:
                port = http_base.rsplit(":", 1)[1]
                result = tls_run(base, bundle, "--http-port", port)
                assert checks(result)["PMB-TLS-007"]["status"] == expected
    no_hsts_recorder = Recorder()
    with https_with(tmp_path, authority, no_hsts_recorder) as base:
        result = tls_run(base, bundle)
    assert checks(result)["PMB-TLS-008"]["status"] == "fail"


def https_with(tmp_path: Path, ca: trustme.CA, recorder: Recorder) -> Any:
    cert = ca.issue_cert("127.0.0.1")
    certfile, keyfile = tmp_path / "rc.pem", tmp_path / "rk.pem"
    cert.private_key_pem.write_to_path(str(keyfile))
    cert.cert_chain_pems[0].write_to_path(str(certfile))
    return serve(recorder.app(), ssl_certfile=str(certfile), ssl_keyfile=str(keyfile))


def test_version_leak(profile: None) -> None:
    async def leaky(request: Request) -> Response:
        response: Response = JSONResponse(
            {"detail": "nope"}, status_code=401 if request.method == "POST" else 404
        )
        response.headers["X-Powered-By"] = "Express"
        response.headers["Server"] = "nginx/1.18.0"
        return response

    with in_process(Starlette(routes=[Route("/{p:path}", leaky, methods=["GET", "POST"])])) as base:
        result = run(base)
    found = checks(result)["PMB-DBG-002"]
    assert found["status"] == "fail" and found["severity"] == "warning"
    assert "nginx/1.18.0" in found["detail"] and "x-powered-by: Express" in found["detail"]


# --- API and configuration ---------------------------------------------------------------------


@pytest.fixture
def sandbox(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    with in_process(create_sandbox()) as base:
        monkeypatch.setenv("PAYMOB_BASE_URL", base)
        yield base


def test_api_checks_against_the_sandbox(sandbox: str, tmp_path: Path) -> None:
    store = Store(tmp_path / "r.db")
    with in_process(create_receiver(store=store, secret=SANDBOX.hmac_secret)) as listener:
        result = run_cli("checklist", listener, "--json", "--timeout", "5")
        found = checks(result)
        assert [
            found[c]["status"] for c in ("PMB-API-001", "PMB-API-002", "PMB-API-003", "PMB-API-004")
        ] == ["pass"] * 4
        assert SANDBOX.hmac_secret not in result.output
        cases = [
            ({"PAYMOB_API_KEY": "wrong-key-0000000"}, "PMB-API-001", "API key was rejected"),
            ({"PAYMOB_INTEGRATION_ID": "123"}, "PMB-API-002", "not in this account"),
            ({"PAYMOB_CURRENCY": "SAR"}, "PMB-API-002", "currency is EGP"),
            ({"PAYMOB_IFRAME_ID": "5"}, "PMB-API-003", "does not exist"),
            ({"PAYMOB_HMAC_SECRET": "another-secret-000000"}, "PMB-API-004", "differs"),
        ]
        for env, check, needle in cases:
            with pytest.MonkeyPatch.context() as patch:
                for key, value in env.items():
                    patch.setenv(key, value)
                found = checks(run_cli("checklist", listener, "--json", "--timeout", "5"))
            assert found[check]["status"] == "fail" and needle in found[check]["detail"], (
                check,
                found[check],
            )
        skipped = checks(run_cli("checklist", listener, "--json", "--no-api"))
        assert skipped["PMB-API-001"]["status"] == "skip"


def test_configuration_checks_for_a_real_deployment() -> None:
    settings = config.sandbox_settings("https://accept.paymob.com")
    results = {
        r.id: r
        for r in checklist.config_checks(
            settings, "https", "shop.example", WEBHOOK, None, False, 443
        )
    }
    assert (
        results["PMB-CFG-001"].status is checklist.Status.FAIL
    )  # demo credentials are not an account's
    assert results["PMB-CFG-002"].status is checklist.Status.FAIL  # test mode for a real deployment
    assert "localhost" in results["PMB-CFG-003"].detail
    values = dict(settings.values)
    values["processed_callback_url"] = config.Resolved(
        "https://abc.ngrok-free.app/api/payments/webhook/", config.Source.PROFILE, "x"
    )
    tunnel = config.Settings(settings.profile, "", True, settings.config, values)
    result = account._callback_url_check(
        "PMB-CFG-003",
        tunnel,
        "processed_callback_url",
        "https",
        "shop.example",
        WEBHOOK,
        False,
        443,
    )
    assert result.status is checklist.Status.FAIL and "tunnel" in result.detail
    values["processed_callback_url"] = config.Resolved(
        "https://shop.example/api/payments/webhook/", config.Source.PROFILE, "x"
    )
    good = config.Settings(settings.profile, "", True, settings.config, values)
    result = account._callback_url_check(
        "PMB-CFG-003", good, "processed_callback_url", "https", "shop.example", WEBHOOK, False, 443
    )
    assert result.status is checklist.Status.PASS


# --- output and history --------------------------------------------------------------------------


def test_text_output_history_and_diff(django_url: str, profile: None, tmp_path: Path) -> None:
    db = tmp_path / "h.db"
    first = run_cli("--db", str(db), "checklist", f"{django_url}/good", "--no-api")
    assert first.code == 0
    assert (
        "probes: declined test transactions" in first.stdout and "cannot move money" in first.stdout
    )
    assert "PMB-HMAC-003" in first.stdout and "— exit 0" in first.stdout
    second = run_cli(
        "--db",
        str(db),
        "checklist",
        f"{django_url}/good",
        "--no-api",
        "--webhook-path",
        "/good/nothing/",
    )
    del second
    third = run_cli(
        "--db", str(db), "checklist", f"{django_url}/good", "--no-api", "--fail-level", "warning"
    )
    assert third.code == 1  # plain http is a warning
    runs = run_cli("--db", str(db), "checklist", "history", "--json").json()
    assert [r["exit_code"] for r in runs] == [1, 1, 0]
    diff = run_cli(
        "--db", str(db), "checklist", "history", f"{django_url}/good", "--diff", "--json"
    ).json()
    changed = {c["id"]: (c["before"], c["now"]) for c in diff["changes"]}
    assert changed.get("PMB-NET-002") == ("fail", "pass")
    text = run_cli("--db", str(db), "checklist", "history")
    assert "run" in text.stdout and f"{django_url}/good" in text.stdout
    assert run_cli("--db", str(tmp_path / "empty.db"), "checklist", "history", "--diff").code == 2


def test_readme_documents_every_check() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    missing = [check for check in checklist.CHECKS if check not in readme]
    assert not missing, missing


def test_unsigned_answered_with_a_server_error(django_url: str, profile: None) -> None:
    found = checks(run(f"{django_url}/crash"))
    assert (
        found["PMB-HMAC-001"]["status"] == "fail" and found["PMB-HMAC-001"]["severity"] == "error"
    )


def test_help_and_bad_bundle(tmp_path: Path) -> None:
    helped = run_cli("checklist", "--help")
    assert (
        helped.code == 0 and "--webhook-path" in helped.stdout and "--fail-level" in helped.stdout
    )
    bundle = tmp_path / "not.pem"
    bundle.write_text("hello")
    result = run_cli("checklist", "https://x.example", "--ca-bundle", str(bundle))
    assert result.code == 2 and "not a readable PEM" in result.stderr


def test_history_ignores_a_trailing_slash(django_url: str, profile: None, tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    run_cli("--db", str(db), "checklist", f"{django_url}/good/", "--no-api")
    run_cli("--db", str(db), "checklist", f"{django_url}/good", "--no-api")
    assert (
        len(
            run_cli("--db", str(db), "checklist", "history", f"{django_url}/good/", "--json").json()
        )
        == 2
    )
    assert (
        run_cli("--db", str(db), "checklist", "history", f"{django_url}/good/", "--diff").code == 0
    )


def test_history_diff_in_process(tmp_path: Path) -> None:
    """``history --diff`` is a library function: the last two runs of a URL, compared by check."""
    from paymobctl.checklist import history

    def record(store: Store, url: str, statuses: dict[str, str], suite: str = "checklist") -> None:
        store.record_checklist_run(
            url=url,
            profile="p",
            mode="test",
            started_at="2026-01-01T00:00:00+00:00",
            duration_ms=1.0,
            fail_level="error",
            exit_code=0,
            probe_order_id=None,
            results=[
                {"id": c, "area": "a", "severity": "error", "status": s, "detail": f"{c} {s}"}
                for c, s in statuses.items()
            ],
            suite=suite,
        )

    with Store(tmp_path / "h.db") as store:
        assert history.diff(store, "checklist") is None
        record(store, "https://a.example", {"PMB-NET-001": "fail", "PMB-TLS-001": "pass"})
        record(store, "https://b.example", {"PMB-NET-001": "pass"})
        record(store, "https://a.example", {"PMB-NET-001": "pass", "PMB-DBG-001": "fail"})
        record(store, "https://a.example", {"PMB-NET-001": "pass"}, suite="webhook")
        assert history.diff(store, "checklist", "https://b.example/") is None
        found = history.diff(store, "checklist")  # the latest URL with two runs
        assert found is not None and found.url == "https://a.example"
        assert (found.from_run, found.to_run) == (1, 3)
        assert [(c.id, c.before, c.now) for c in found.changes] == [
            ("PMB-NET-001", "fail", "pass"),
            ("PMB-DBG-001", history.ABSENT, "fail"),
            ("PMB-TLS-001", "pass", history.ABSENT),
        ]
        assert found.as_dict()["changes"][2]["detail"] == "no longer run"
        listed = history.summaries(store, "checklist", "https://a.example/")
        assert [(s.run["id"], s.passed, s.failed) for s in listed] == [(3, 1, 1), (1, 1, 1)]
