"""``paymobctl hmac sign|verify|samples|fields``: compute, verify and explain Paymob callback HMACs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from paymobctl.cli.options import command, runtime
from paymobctl.cli.output import Output
from paymobctl.errors import UsageError, VerificationFailed
from paymobctl.models import CallbackKind

if TYPE_CHECKING:
    from paymobctl.signing import Explanation, Payload

app = typer.Typer(
    add_completion=False,
    rich_markup_mode=None,
    help="Compute, verify and explain Paymob callback HMACs (HMAC-SHA512, docs/paymob.md §8).",
    no_args_is_help=True,
)

FileArg = Annotated[
    str | None,
    typer.Argument(
        help="Callback body (JSON) to read; '-' for stdin. Omit with --url or --sample.",
        show_default=False,
    ),
]
UrlOpt = Annotated[
    str | None,
    typer.Option(
        "--url",
        help="A GET redirect URL (or query) to sign/verify; with FILE, the processed-callback "
        "URL the body was POSTed to (its ?hmac= is the received signature).",
        show_default=False,
    ),
]
TypeOpt = Annotated[
    CallbackKind | None,
    typer.Option(
        "--type",
        help="Callback type, when the body has no 'type' (DELIVERY_STATUS is experimental).",
        case_sensitive=False,
        show_default=False,
    ),
]
SampleOpt = Annotated[
    str | None,
    typer.Option(
        "--sample",
        help="Use a callback shipped with paymobctl (see `paymobctl hmac samples`) and the "
        "public secret that signed it.",
        show_default=False,
    ),
]
SecretFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--secret-file",
        help="Read the HMAC secret from this file ('-' for stdin). Default: the profile's "
        "hmac_secret or PAYMOB_HMAC_SECRET. Never pass a secret on the command line.",
        show_default=False,
    ),
]
ExplainOpt = Annotated[
    bool,
    typer.Option(
        "--explain",
        help="Show the signed fields, the concatenated string, computed vs received, and a "
        "diagnosis of likely mistakes.",
    ),
]


class Input:
    """A payload to sign or verify, its secret and where each came from (a plain class: a
    dataclass would be created at import, on `hmac verify`'s start-up path)."""

    __slots__ = ("label", "payload", "secret", "secret_origin")

    def __init__(self, payload: Payload, secret: str, secret_origin: str, label: str) -> None:
        self.payload = payload
        self.secret = secret
        self.secret_origin = secret_origin
        self.label = label  # where the payload came from


def _read_text(file: str) -> str:
    if file == "-":
        return sys.stdin.read()
    path = Path(file)
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(
            f"{file}: no such file", hint="pass the path of a captured callback body"
        ) from None
    except IsADirectoryError:
        raise UsageError(f"{file}: is a directory", hint="pass a JSON file") from None
    except UnicodeDecodeError:
        raise UsageError(f"{file}: not UTF-8 text", hint="pass the JSON body as sent") from None
    except OSError as exc:
        raise UsageError(f"{file}: cannot read ({exc.strerror})") from None


def _gather(
    file: str | None,
    url: str | None,
    kind: CallbackKind | None,
    sample: str | None,
    secret_file: Path | None,
) -> Input:
    from paymobctl import samples, signing

    secret: str | None = None
    secret_origin = ""
    payload: Payload | None = None
    label = ""
    if sample is not None:
        if file or url:
            raise UsageError(
                "--sample cannot be combined with FILE or --url", hint="use one source"
            )
        loaded = samples.load(sample)
        if loaded.method == "GET":
            payload = signing.parse_query(loaded.url)
        else:
            parsed = signing.parse_body(loaded.body_text, kind)
            payload = signing.Payload(parsed.kind, parsed.data, signing.hmac_from_url(loaded.url))
        if secret_file is None:
            secret = loaded.require_secret()
            secret_origin = f"the sample's published secret ({loaded.source})"
        label = f"sample {sample}"
    elif file is not None:
        if file == "-" and secret_file is not None and str(secret_file) == "-":
            raise UsageError(
                "stdin cannot carry both the body and the secret", hint="use a file for one"
            )
        parsed = signing.parse_body(_read_text(file), kind)
        received = signing.hmac_from_url(url) if url else parsed.hmac
        payload = signing.Payload(parsed.kind, parsed.data, received)
        label = "stdin" if file == "-" else file
    elif url is not None:
        payload = signing.parse_query(url)
        if kind not in (None, CallbackKind.RESPONSE):
            raise UsageError(
                f"--url alone is a GET redirect; --type {kind.value} needs the POST body as FILE",
                hint="pass the body as FILE and the URL it was POSTed to with --url",
            )
        label = "URL"
    else:
        text = "" if sys.stdin.isatty() else sys.stdin.read()
        if text.strip():
            payload = signing.parse_body(text, kind)
            label = "stdin"
    if payload is None:
        raise UsageError(
            "nothing to sign or verify",
            hint="pass a callback body FILE (or - for stdin), --url 'https://...?...&hmac=...', "
            "or --sample docs-transaction",
        )
    if secret_file is not None or secret is None:
        secret, secret_origin = runtime().hmac_secret(secret_file, purpose="HMAC signing")
    return Input(payload, secret, secret_origin, label)


def _render(out: Output, exp: Explanation, secret_display: str, *, verify: bool) -> None:
    out.line(
        f"{exp.kind.value} callback — {len(exp.fields)} signed fields, in signing order"
        + (" (experimental)" if exp.experimental else "")
    )
    rows = []
    for index, f in enumerate(exp.fields, start=1):
        rows.append((str(index), f.label, f.shown))
    out.table(["#", "field", "value"], rows)
    out.pairs(
        [
            ("signed string", exp.message),
            ("secret", secret_display),
            ("computed", exp.computed),
            *(
                [("received", exp.received if exp.received is not None else "<none>")]
                if verify
                else []
            ),
        ]
    )
    if verify:
        if exp.valid:
            convention = exp.convention.value if exp.convention else "empty"
            out.ok(f"result: VALID (null rendering: {convention})")
        else:
            out.bad("result: INVALID")
    for diagnosis in exp.diagnoses:
        out.line(f"  - {diagnosis.message}  [{diagnosis.code}]")


def _explanation_json(exp: Explanation, secret_display: str, *, verify: bool) -> dict[str, object]:
    from paymobctl.signing import render_value

    data: dict[str, object] = {
        "type": exp.kind.value,
        "experimental": exp.experimental,
        "fields": [
            {
                "name": f.name,
                "read_from": f.used_key,
                "value": None if f.missing or f.raw is None else render_value(f.raw),
                "missing": f.missing,
                "null": f.null,
            }
            for f in exp.fields
        ],
        "signed_string": exp.message,
        "secret": secret_display,
        "computed": exp.computed,
        "diagnoses": [{"code": d.code, "message": d.message} for d in exp.diagnoses],
        "malformed_signed_fields": [
            {"field": p.field, "message": p.message} for p in exp.malformed
        ],
    }
    if verify:
        data["received"] = exp.received
        data["valid"] = exp.valid
        data["convention"] = exp.convention.value if exp.convention else None
    return data


def _secret_display(item: Input) -> str:
    from paymobctl.models import mask_secret

    return f"{mask_secret(item.secret)} from {item.secret_origin}"


_EXPERIMENTAL_WARNING = (
    "{kind} signing is experimental: its field order comes from a single SDK and no real "
    "payload was ever published (docs/paymob.md §7.4); confirm against a real callback"
)


@command(app, "sign")
def sign(
    file: FileArg = None,
    url: UrlOpt = None,
    type_: TypeOpt = None,
    sample: SampleOpt = None,
    secret_file: SecretFileOpt = None,
    explain: ExplainOpt = False,
) -> None:
    """Print the lowercase hex HMAC Paymob would send for a callback body or redirect URL."""
    from paymobctl import signing

    rt = runtime()
    item = _gather(file, url, type_, sample, secret_file)
    exp = signing.explain(item.payload.kind, item.payload.data, item.secret, None, verifying=False)
    if exp.experimental and not (explain or rt.json):
        rt.out.warn(_EXPERIMENTAL_WARNING.format(kind=exp.kind.value))
    if rt.json:
        rt.out.json(
            _explanation_json(exp, _secret_display(item), verify=False)
            if explain
            else {"type": exp.kind.value, "hmac": exp.computed, "experimental": exp.experimental}
        )
    elif explain:
        _render(rt.out, exp, _secret_display(item), verify=False)
    else:
        rt.out.line(exp.computed)


@command(app, "verify")
def verify(
    file: FileArg = None,
    hmac: Annotated[
        str | None,
        typer.Option(
            "--hmac",
            help="The received HMAC (hex). Default: the ?hmac= of --url, or "
            "the 'hmac' inside a flat payments/pay record.",
            show_default=False,
        ),
    ] = None,
    url: UrlOpt = None,
    type_: TypeOpt = None,
    sample: SampleOpt = None,
    secret_file: SecretFileOpt = None,
    explain: ExplainOpt = False,
) -> None:
    """Check a received HMAC: exit 0 when valid, 1 when not. With --explain, show why."""
    from paymobctl import signing

    rt = runtime()
    item = _gather(file, url, type_, sample, secret_file)
    payload = item.payload
    received = hmac if hmac is not None else payload.hmac
    malformed: str | None = None
    if explain or rt.json:
        exp = signing.explain(
            payload.kind, payload.data, item.secret, received, raw_query=payload.raw_query
        )
        valid, convention = exp.valid, exp.convention
    else:
        result = signing.verify(payload.kind, payload.data, item.secret, received)
        valid, convention = result.valid, result.convention
        if result.malformed:
            malformed = signing.describe_shape_problems(result.malformed)
        if payload.kind in signing.EXPERIMENTAL_KINDS:
            rt.out.warn(_EXPERIMENTAL_WARNING.format(kind=payload.kind.value))
    settings_profile = rt.options.profile
    rt.store().record_hmac_check(
        kind=payload.kind.value,
        valid=valid,
        convention=convention.value if convention else None,
        profile=settings_profile,
        origin=item.label,
    )
    if rt.json:
        rt.out.json(_explanation_json(exp, _secret_display(item), verify=True))
    elif explain:
        _render(rt.out, exp, _secret_display(item), verify=True)
    elif valid:
        rt.out.ok(f"valid {payload.kind.value} HMAC")
    elif malformed:
        rt.out.bad(f"REJECTED {payload.kind.value}: {malformed}")
    else:
        rt.out.bad(f"INVALID {payload.kind.value} HMAC" + ("" if received else " (no hmac given)"))
        rt.out.info("run again with --explain to see the signed fields and a diagnosis")
    if not valid:
        raise typer.Exit(int(VerificationFailed.exit_code))


@command(app, "samples")
def list_samples() -> None:
    """List the callbacks shipped with paymobctl: real ones from Paymob's docs and invented ones,
    where each came from, and whether `hmac verify --sample NAME` can check it."""
    from paymobctl import samples

    rt = runtime()
    loaded = [samples.load(name) for name in samples.names()]
    if rt.json:
        rt.out.json(
            [
                {
                    "name": s.name,
                    "method": s.method,
                    "origin": s.origin.value,
                    "verifiable": s.verifiable,
                    "description": s.description,
                    "source": s.source,
                }
                for s in loaded
            ]
        )
        return
    rt.out.table(
        ["name", "method", "origin", "verify", "description"],
        [
            (s.name, s.method, s.origin.value, "yes" if s.verifiable else "no", s.description)
            for s in loaded
        ],
    )
    rt.out.line("provenance:")
    for s in loaded:
        rt.out.line(f"  {s.name}: {s.source}")


_FIELD_KINDS = {
    "transaction": CallbackKind.TRANSACTION,
    "token": CallbackKind.TOKEN,
    "redirect": CallbackKind.RESPONSE,
}


@command(app, "fields")
def fields(
    kind: Annotated[
        str | None,
        typer.Argument(
            metavar="[transaction|token|redirect]",
            help="Which callback (default: all three).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Print the signed fields in order, with the rendering rules: what a verifier must do."""
    from paymobctl.signing import RENDERING_RULES, fields_for

    rt = runtime()
    if kind is not None and kind.lower() not in _FIELD_KINDS:
        raise UsageError(f"unknown callback {kind!r}", hint="choose transaction, token or redirect")
    chosen = [kind.lower()] if kind else list(_FIELD_KINDS)
    lists = {}
    for name in chosen:
        callback = _FIELD_KINDS[name]
        redirect = callback is CallbackKind.RESPONSE
        lists[name] = [
            {
                "field": spec.get_key if redirect else spec.post_path,
                **({"aliases": list(spec.get_aliases)} if redirect and spec.get_aliases else {}),
            }
            for spec in fields_for(callback)
        ]
    if rt.json:
        rt.out.json({"fields": lists, "rules": list(RENDERING_RULES)})
        return
    where = {
        "transaction": "TRANSACTION processed callback: obj.<field> of the POST body",
        "token": "TOKEN callback: obj.<field> of the POST body",
        "redirect": "transaction response redirect: GET query parameters",
    }
    for name, items in lists.items():
        rt.out.line(f"{name} — {where[name]} ({len(items)} fields):")
        for number, item in enumerate(items, 1):
            aliases = item.get("aliases")
            also = f"   (paymobctl also reads {', '.join(aliases)})" if aliases else ""
            rt.out.line(f"  {number:>2}. {item['field']}{also}")
        rt.out.line()
    rt.out.line("Rules:")
    for rule in RENDERING_RULES:
        rt.out.line(f"  - {rule}")
