"""Card data that must never be stored: full card numbers (PANs) and security codes (CVV).

Pure (the standard library, and ``documents`` for nesting-bounded JSON). :func:`mask_text` is
the one masking function: everything the store writes goes through it (directly, or through
:func:`mask_value`, :func:`mask_query`, :func:`mask_body`, which only find the text to give it). A number counts as a card number when
it is a Luhn-valid run of 13–19 digits (single spaces or dashes allowed between digits) that is
not one repeated digit. Masking keeps the last four digits, PCI-style.

Encodings are seen through: ``+`` and ``%20`` between digit groups, percent-encoded digits
(``%34%31…``), JSON ``\\u0034`` escapes, numbers sent as JSON numbers (integers and integral
floats), any depth of arrays and objects, object keys.

One exception, argued: a digit run inside a word of 64 or more hexadecimal characters (an HMAC
or SHA digest, a long hex token) is not masked. Such a word is machine output: a card number
never lands inside one by accident, and without the exception about one HMAC in a hundred would
be mangled in the store (its 128 hex characters often hold a Luhn-valid digit run). A digit run
merely next to letters ("pan4111111111111111", "4111111111111111abc") IS masked: people and
programs glue card numbers to words, so that is not safe to skip.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import unquote_plus

from paymobctl.documents import loads_json

# 13–19 digits, optionally grouped by single spaces or dashes, not part of a longer number.
# A maximal run of digit groups holding 13 digits or more (groups split by single spaces or
# dashes); which consecutive groups form a card number is _mask_run's question.
# The patterns are compiled (and cached) by re on first use, not at start-up: most commands
# never mask a card number.
_PAN_RE = r"(?<![0-9])(?:[0-9][ -]?){12,}[0-9](?![0-9])"
_HEX = frozenset("0123456789abcdefABCDEF")
HEX_WORD_EXEMPT = 64  # hex words at least this long are digests, not card data


# One byte map serves both pre-checks (they run on every request listen stores, so one
# translate and a few substring tests, no regex: scripts/bench_listen.py). Digits, and the
# characters that spell a digit in an escape ("%", "\\", "u": %34, %20 between groups, \\u0034),
# become "0"; separators (space, dash, plus) are deleted; c, v, s, e, r, i (any case) are kept
# for the security-code keys (cvv, cvc, cvn → "cv"; csc; security → "sec0ri"); everything else
# is "|". A run of 13 "0" is then the only way a card number can be there.
def _scan_map() -> bytes:
    table = bytearray(b"|" * 256)
    for b in b"0123456789%\\uU":
        table[b] = ord("0")
    for b in b"cvseri":
        table[b] = table[b - 32] = b  # and the upper case letter
    return bytes(table)


_SCAN_MAP = _scan_map()
_THIRTEEN = b"0" * 13


def _scan(text: str | bytes) -> bytes:
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    return data.translate(_SCAN_MAP, b" -+")


# Keys whose values are card security codes: never stored (PCI DSS 3.2).
_CVV_NAMES = ("cvv", "cvv2", "cvc", "cvc2", "csc", "cvn", "securitycode", "cardsecuritycode")
_CVV_TEXT = r"""(?ix)
    (["']?(?:[a-z_]*[_-])?(?:cvv2?|cvc2?|csc|cvn|security[_-]?code)["']?\s*[:=]\s*["']?)
    ([0-9]{3,4})
    (?![0-9])
    """
REDACTED = "***"


def luhn_valid(digits: str) -> bool:
    """Whether a digit string passes the Luhn check every real card number passes."""
    total = 0
    for index, char in enumerate(reversed(digits)):
        number = ord(char) - 48
        if index % 2 == 1:
            number *= 2
            if number > 9:
                number -= 9
        total += number
    return total % 10 == 0


def is_pan(digits: str) -> bool:
    """A bare digit string that is a full card number."""
    return (
        13 <= len(digits) <= 19
        and digits.isascii()
        and digits.isdigit()
        and len(set(digits)) > 1
        and luhn_valid(digits)
    )


def is_pan_number(value: object) -> bool:
    """An integer (or integral float) whose digits are a card number: ids can be one."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(value, float):
        if not value.is_integer() or abs(value) >= 1e20:
            return False
        value = int(value)
    return is_pan(str(abs(value)))


def might_contain_pan(text: str | bytes) -> bool:
    """A fast, conservative pre-check: False means there is certainly no card number, in any of
    the encodings :func:`mask_text` sees through."""
    return _scan(text).find(_THIRTEEN) >= 0


def might_contain_cvv(text: str | bytes) -> bool:
    """A fast, conservative pre-check for security-code keys (cvv, cvc, csc, security code)."""
    return _cvv_hint(_scan(text))


# ``find``, not ``in``: ``bytes.__contains__`` first tries its argument as an integer and
# formats a TypeError it then discards (~2,000 instructions per test, measured with callgrind).
# "cv" is found through its "v" (one byte: memchr; a callback has a dozen), not as a two-byte
# needle, which costs as much as the card-number scan itself.
def _cvv_hint(scanned: bytes) -> bool:
    find = scanned.find
    at = find(b"v", 1)
    while at > 0:
        if scanned[at - 1] == 99:  # "c"
            return True
        at = find(b"v", at + 1)
    return find(b"csc") >= 0 or find(b"sec0ri") >= 0


def _might_hold_card_data(text: str | bytes) -> bool:
    scanned = _scan(text)
    return scanned.find(_THIRTEEN) >= 0 or _cvv_hint(scanned)


def might_hold_card_data(
    body: bytes, query: str, pairs: list[tuple[str, str]], texts: tuple[str, ...] = ()
) -> bool:
    """One pre-check for everything a stored request holds: its body, query string, header
    pairs and other ``texts``. False means :func:`mask_body`, :func:`mask_query`,
    :func:`mask_pairs` and :func:`mask_text` would each return their input unchanged.

    It is exactly their own pre-checks, run once over the parts joined by newlines (a newline
    ends a digit run in the scan, so no run spans two parts): one ``translate`` and four
    substring searches per request instead of that per part (scripts/bench_listen.py).
    """
    parts = [body, _query_scan_text(query).encode("utf-8", "surrogatepass")]
    if pairs:
        parts.append(_pairs_scan_text(pairs).encode("utf-8", "surrogatepass"))
    parts.extend([text.encode("utf-8", "surrogatepass") for text in texts])
    scanned = b"\n".join(parts).translate(_SCAN_MAP, b" -+")
    return scanned.find(_THIRTEEN) >= 0 or _cvv_hint(scanned)


_HEX_DIGITS = b"0123456789abcdefABCDEF"


def is_digest(text: str) -> bool:
    """A whole value that is one long hex word (an HMAC): nothing in it is masked, so the
    card-number checks can skip it (a Paymob HMAC holds a 13-digit run every few requests)."""
    # [0-9a-fA-F]{64,} without a regex (a third of its cost on the hot path): ASCII, and no
    # byte is left once the hex digits are deleted.
    return (
        len(text) >= HEX_WORD_EXEMPT
        and text.isascii()
        and not text.encode("ascii").translate(None, _HEX_DIGITS)
    )


def _in_hex_word(text: str, start: int, end: int) -> bool:
    left = start
    while left > 0 and text[left - 1] in _HEX:
        left -= 1
    right = end
    while right < len(text) and text[right] in _HEX:
        right += 1
    return right - left >= HEX_WORD_EXEMPT


def _mask_run(raw: str) -> tuple[str, int]:
    """Mask the card numbers in one run of digit groups (``4111 1111 1111 1111 12``).

    The whole run, or consecutive groups of it (a card number followed by an expiry date, an
    id before it): separators are where a card number can start and end. An unbroken digit
    run is only ever taken whole, so long ids are not cut into false card numbers.
    """
    groups = [(m.start(), m.end()) for m in re.finditer(r"[0-9]+", raw)]
    out = list(raw)
    count = 0
    first = 0
    while first < len(groups):
        # The windows starting at this group that hold at most 19 digits (bounded work even
        # for a megabyte of "1 2 3 …"), longest first.
        windows: list[int] = []
        digits = 0
        for last in range(first, len(groups)):
            digits += groups[last][1] - groups[last][0]
            if digits > 19:
                break
            windows.append(last)
        for last in reversed(windows):
            number = "".join(raw[a:b] for a, b in groups[first : last + 1])
            if is_pan(number):
                positions = [i for a, b in groups[first : last + 1] for i in range(a, b)]
                for index in positions[:-4]:
                    out[index] = "x"
                count += 1
                first = last + 1
                break
        else:
            first += 1
    return "".join(out), count


def _mask_plain(text: str) -> tuple[str, int]:
    """Mask card numbers written as digits, keeping every other character (and the length)."""
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        if _in_hex_word(text, match.start(), match.end()):
            return match.group(0)
        masked, found = _mask_run(match.group(0))
        count += found
        return masked

    return re.sub(_PAN_RE, replace, text), count


_JSON_ESCAPE = r"\\u([0-9a-fA-F]{4})"


def _decoded(text: str) -> str:
    """The text with percent-encoding, ``+`` and JSON ``\\u`` escapes undone (twice, for
    double encoding)."""
    for _ in range(2):
        decoded = re.sub(_JSON_ESCAPE, lambda m: chr(int(m.group(1), 16)), text)
        if "%" in decoded or "+" in decoded:
            decoded = unquote_plus(decoded, errors="surrogateescape")
        if decoded == text:
            break
        text = decoded
    return text


def mask_text(text: str) -> tuple[str, int]:
    """THE masking function: ``text`` with every full card number replaced by its last four
    digits, and how many were masked.

    Plain digits are masked in place (every other character kept). A number only visible once
    percent-encoding or JSON escapes are undone is masked in the decoded text, which is then
    returned instead (the original cannot be kept without keeping the number).
    """
    if not might_contain_pan(text):
        return text, 0
    masked, count = _mask_plain(text)
    decoded = _decoded(masked)
    if decoded != masked:
        decoded_masked, more = _mask_plain(decoded)
        if more:
            return decoded_masked, count + more
    return masked, count


def is_cvv_key(key: str) -> bool:
    """``cvv``, ``card_cvv``, ``CVC2``, ``security_code``, ``cardSecurityCode``…"""
    normalized = "".join(ch for ch in key.lower() if ch.isalnum())
    return normalized.endswith(_CVV_NAMES)


def mask_cvv_text(text: str) -> tuple[str, int]:
    """Redact ``cvv=123`` / ``"cvc": "123"`` style values in text that is not JSON."""
    if not might_contain_cvv(text):
        return text, 0
    count = 0

    def replace(match: re.Match[str]) -> str:
        nonlocal count
        count += 1
        return match.group(1) + REDACTED

    return re.sub(_CVV_TEXT, replace, text), count


def mask_value(value: Any, *, _depth: int = 0) -> tuple[Any, int]:
    """A parsed JSON value with card numbers masked (strings, keys, integers, integral floats)
    and security-code keys dropped; the count of what was removed."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, bool) or value is None:
        return value, 0
    if isinstance(value, int | float):
        if is_pan_number(value):
            digits = str(int(abs(value)))
            return "x" * (len(digits) - 4) + digits[-4:], 1
        return value, 0
    if _depth > 200:  # deeper than any callback: drop it rather than recurse without end
        return None, 1
    total = 0
    if isinstance(value, dict):
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if isinstance(key, str) and is_cvv_key(key):
                total += 1
                continue
            new_key, key_count = mask_text(key) if isinstance(key, str) else (key, 0)
            out[new_key], count = mask_value(item, _depth=_depth + 1)
            total += key_count + count
        return out, total
    if isinstance(value, list):
        items = []
        for item in value:
            masked, count = mask_value(item, _depth=_depth + 1)
            items.append(masked)
            total += count
        return items, total
    return value, 0


def mask_query(query: str) -> tuple[str, int]:
    """A query string (or form body) with card numbers masked in every name and value,
    ``hmac`` included, and security-code parameters dropped."""
    if not _might_hold_card_data(_query_scan_text(query)):
        return query, 0
    parts = query.split("&")
    kept: list[str] = []
    total = 0
    for part in parts:
        name = unquote_plus(part.partition("=")[0], errors="replace")
        if is_cvv_key(name):
            total += 1
            continue
        masked, count = mask_text(part)
        kept.append(masked)
        total += count
    return "&".join(kept), total


def _query_scan_text(query: str) -> str:
    """What :func:`mask_query`'s pre-check scans: the query without its long hex values
    (Paymob's ``?hmac=…``; nothing in one is masked, and a digest often holds 13 digits)."""
    if query.startswith("hmac=") and "&" not in query and is_digest(query[5:]):
        return ""  # how Paymob sends it: the only parameter
    if "=" not in query:
        return query
    return "&".join([p for p in query.split("&") if not is_digest(p.partition("=")[2])])


def _pairs_scan_text(pairs: list[tuple[str, str]]) -> str:
    return "\n".join([f"{name}:{value}" for name, value in pairs])


def mask_body(data: bytes) -> tuple[bytes, int]:
    """A request body about to be stored, with card numbers and security codes removed.

    Bodies without any are returned as they are (byte-identical). In a JSON body the digits
    are masked in place when that is enough (every other byte kept); when it is not (a number
    sent as a JSON number, ``\\u`` escapes, a security-code key to drop) the body is masked
    value by value and re-serialised: still JSON, only card data gone. A form body is masked
    parameter by parameter; other text as text.
    """
    if not _might_hold_card_data(data):
        return data, 0
    text = data.decode("utf-8", "surrogateescape")
    if text.lstrip()[:1] in ("{", "["):
        try:
            parsed = loads_json(text)  # nesting-bounded: deeper is a ValueError (documents)
        except ValueError:
            parsed = _NOT_JSON
        if parsed is not _NOT_JSON:
            structural, count = mask_value(parsed)
            if not count:
                return data, 0
            in_place, _ = mask_text(text)
            try:
                if loads_json(in_place) == structural:
                    return _encode(in_place), count
            except ValueError:
                pass
            return _encode(_dumps(structural)), count
    if "=" in text and not any(ch.isspace() for ch in text.strip()):
        masked_text, count = mask_query(text)
    else:
        masked_text, count = mask_text(text)
        masked_text, cvv = mask_cvv_text(masked_text)
        count += cvv
    if not count:
        return data, 0
    return _encode(masked_text), count


def mask_pairs(pairs: list[tuple[str, str]]) -> tuple[list[tuple[str, str]], int]:
    """Header name/value pairs (``Referer`` included) with card numbers masked in names and
    values; a header named like a security code loses its value."""
    if not _might_hold_card_data(_pairs_scan_text(pairs)):
        return pairs, 0
    total = 0
    out = []
    for name, value in pairs:
        if is_cvv_key(name):
            out.append((name, REDACTED))
            total += 1
            continue
        masked_name, name_count = mask_text(name)  # names too: a request chooses them
        masked, count = mask_text(value)
        out.append((masked_name, masked))
        total += name_count + count
    return out, total


_NOT_JSON = object()


def _encode(text: str) -> bytes:
    """Back to bytes: undecodable input bytes restored; a lone surrogate (only a decoded
    ``\\ud800`` escape can make one) replaced."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
