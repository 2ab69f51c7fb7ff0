"""Redaction: canaries never leak from headers, URLs, bodies or scrubbed text; options checks."""

from __future__ import annotations

import base64
import copy
import sys
import traceback
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import given, strategies as st

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from collections.abc import Callable

from resilient.http._redact import (
    MIN_SECRET_LENGTH,
    PLACEHOLDER,
    SENSITIVE_HEADERS,
    SENSITIVE_QUERY,
    Redaction,
    Scrubber,
)

CANARY = "CANARY-s3cr3t-7f1e"
R = Redaction()


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


SENSITIVE_REQUEST = httpx.Headers(
    [
        ("Authorization", f"Bearer {CANARY}"),
        ("Proxy-Authorization", basic("alice", CANARY)),
        ("Cookie", f"session={CANARY}; theme=dark"),
        ("Set-Cookie", f"id={CANARY}; Path=/; HttpOnly"),
        ("X-Api-Key", CANARY),
        ("api-key", CANARY),
        ("X-Auth-Token", CANARY),
        ("Accept", "application/json"),
    ]
)
SENSITIVE_URL = httpx.URL(
    f"https://alice:{CANARY}@api.example.com/v1/items?page=2&api_key={CANARY}&Token={CANARY}"
    f"#access_token={CANARY}"
)


# Headers


def test_no_sensitive_header_value_survives() -> None:
    redacted = R.redact_headers(SENSITIVE_REQUEST)
    assert str(redacted).count(CANARY) == 0
    assert redacted == [
        ("authorization", f"Bearer {PLACEHOLDER}"),
        ("proxy-authorization", f"Basic {PLACEHOLDER}"),
        ("cookie", f"session={PLACEHOLDER}; theme={PLACEHOLDER}"),
        ("set-cookie", f"id={PLACEHOLDER}; Path=/; HttpOnly"),
        ("x-api-key", PLACEHOLDER),
        ("api-key", PLACEHOLDER),
        ("x-auth-token", PLACEHOLDER),
        ("accept", "application/json"),
    ]


def test_header_names_match_in_any_case_and_keep_their_spelling_and_order() -> None:
    pairs = [("X-Trace", "1"), ("AUTHORIZATION", CANARY), ("x-API-key", CANARY), ("X-Trace", "2")]
    assert R.redact_headers(pairs) == [
        ("X-Trace", "1"),
        ("AUTHORIZATION", PLACEHOLDER),
        ("x-API-key", PLACEHOLDER),
        ("X-Trace", "2"),
    ]
    custom = Redaction(headers={"X-Tenant-Key"})
    assert custom.redact_headers({"x-tenant-key": CANARY, "Authorization": "kept"}) == [
        ("x-tenant-key", PLACEHOLDER),
        ("Authorization", "kept"),
    ]


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (f"Bearer {CANARY}", f"Bearer {PLACEHOLDER}"),
        (f"bearer   {CANARY}", f"bearer {PLACEHOLDER}"),
        (f"token {CANARY}", f"token {PLACEHOLDER}"),
        (CANARY, PLACEHOLDER),  # no scheme at all
        (f"{CANARY} {CANARY}", PLACEHOLDER),  # an unknown first word may be a secret
        (f"Custom {CANARY}", PLACEHOLDER),
        ("Bearer ", PLACEHOLDER),
        ("", PLACEHOLDER),
    ],
)
def test_authorization_shows_only_a_well_known_scheme(value: str, shown: str) -> None:
    assert R.redact_headers([("Authorization", value)]) == [("Authorization", shown)]


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("Cookie", f"a={CANARY}", f"a={PLACEHOLDER}"),
        ("Cookie", f"a={CANARY};b={CANARY}; ;", f"a={PLACEHOLDER}; b={PLACEHOLDER}"),
        ("Cookie", CANARY, PLACEHOLDER),  # no name: all of it is a value
        (
            "Set-Cookie",
            f"id={CANARY}; Expires=Wed, 21 Oct 2015 07:28:00 GMT; Secure; Foo={CANARY}; {CANARY}",
            (
                f"id={PLACEHOLDER}; Expires=Wed, 21 Oct 2015 07:28:00 GMT; Secure; "
                f"Foo={PLACEHOLDER}; {PLACEHOLDER}"
            ),
        ),
    ],
)
def test_cookies_keep_names_and_lose_values(name: str, value: str, shown: str) -> None:
    assert R.redact_headers([(name, value)]) == [(name, shown)]


def test_set_cookie_values_folded_into_one_are_each_redacted() -> None:
    # dict(response.headers) joins repeated Set-Cookie lines with ", ".
    folded = (
        f"theme={CANARY}; Path=/, sid={CANARY}; Expires=Wed, 21 Oct 2015 07:28:00 GMT; HttpOnly"
    )
    assert R.redact_headers({"set-cookie": folded}) == [
        (
            "set-cookie",
            (
                f"theme={PLACEHOLDER}; Path=/, "
                f"sid={PLACEHOLDER}; Expires=Wed, 21 Oct 2015 07:28:00 GMT; HttpOnly"
            ),
        )
    ]
    scrub = R.scrubber({"set-cookie": folded})
    assert CANARY not in scrub(f"got {CANARY}")


def test_odd_header_input_does_not_raise() -> None:
    pairs: list[Any] = [
        (b"Authorization", b"Bearer \xff\xfe" + CANARY.encode()),
        ("X-Api-Key", "ключ-" + CANARY),
        (b"X-Name", "caf\u00e9".encode()),
        (b"X-Latin", b"caf\xe9"),
        ("X-Number", 5),
        ("not", "a", "pair"),
        "junk",
    ]
    redacted = R.redact_headers(pairs)
    assert str(redacted).count(CANARY) == 0
    assert redacted == [
        ("Authorization", f"Bearer {PLACEHOLDER}"),
        ("X-Api-Key", PLACEHOLDER),
        ("X-Name", "caf\u00e9"),
        ("X-Latin", "caf\u00e9"),
        ("X-Number", "5"),
    ]
    assert R.redact_headers(None) == []


def test_redact_headers_does_not_change_its_input() -> None:
    pairs = [("Authorization", CANARY)]
    mapping = {"Authorization": CANARY}
    R.redact_headers(pairs)
    R.redact_headers(mapping)
    R.redact_headers(SENSITIVE_REQUEST)
    assert pairs == [("Authorization", CANARY)]
    assert mapping == {"Authorization": CANARY}
    assert SENSITIVE_REQUEST["x-api-key"] == CANARY


# URLs


def test_no_sensitive_url_part_survives() -> None:
    redacted = R.redact_url(SENSITIVE_URL)
    assert redacted.count(CANARY) == 0
    assert redacted == (
        f"https://{PLACEHOLDER}:{PLACEHOLDER}@api.example.com/v1/items"
        f"?page=2&api_key={PLACEHOLDER}&Token={PLACEHOLDER}#access_token={PLACEHOLDER}"
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://example.com/p?q=1", "https://example.com/p?q=1"),
        (f"https://{CANARY}@example.com/", f"https://{PLACEHOLDER}@example.com/"),
        (f"https://u:{CANARY}@example.com", f"https://{PLACEHOLDER}:{PLACEHOLDER}@example.com"),
        (
            f"https://u:{CANARY}@example.com/a@b",
            f"https://{PLACEHOLDER}:{PLACEHOLDER}@example.com/a@b",
        ),
        # A token as the user name, with an empty password (Stripe's form).
        (f"https://{CANARY}:@example.com/", f"https://{PLACEHOLDER}:{PLACEHOLDER}@example.com/"),
        (
            f"https://example.com/?api%5Fkey={CANARY}",
            f"https://example.com/?api%5Fkey={PLACEHOLDER}",
        ),
        (
            f"https://example.com/?API_KEY={CANARY}&x",
            f"https://example.com/?API_KEY={PLACEHOLDER}&x",
        ),
        (
            f"https://example.com/?sig={CANARY}&sig={CANARY}",
            f"https://example.com/?sig={PLACEHOLDER}&sig={PLACEHOLDER}",
        ),
        ("https://example.com/?token", "https://example.com/?token"),  # no value to hide
        (f"/relative?password={CANARY}", f"/relative?password={PLACEHOLDER}"),
        (f"http://[::1/?key={CANARY}", f"http://[::1/?key={PLACEHOLDER}"),  # malformed
        (f"https://example.com/?key={CANARY}".encode(), f"https://example.com/?key={PLACEHOLDER}"),
        # ";" separates parameters too (HTML 4.01 B.2.2, and many servers); a secret's
        # value still runs to the next "&", ";" and all.
        (
            f"https://example.com/?format=json;api_key={CANARY};page=2&q=1",
            f"https://example.com/?format=json;api_key={PLACEHOLDER}&q=1",
        ),
        # ... but a secret's value runs to the next "&": ";" is allowed in a value.
        (
            f"https://cdn.example/f?token=exp=1700000000;hmac={CANARY}&x=1",
            f"https://cdn.example/f?token={PLACEHOLDER}&x=1",
        ),
        ("https://example.com/?fields=name;key&tags=a;token", None),  # no values to hide
        (
            f"https://b.s3.amazonaws.com/k?X-Amz-Credential={CANARY}&X-Amz-Expires=60",
            f"https://b.s3.amazonaws.com/k?X-Amz-Credential={PLACEHOLDER}&X-Amz-Expires=60",
        ),
    ],
)
def test_url_redaction(url: Any, shown: str | None) -> None:
    assert R.redact_url(url) == (url if shown is None else shown)
    assert CANARY not in R.scrubber(url=url)(str(url))


def test_url_query_names_are_configurable_and_case_insensitive() -> None:
    custom = Redaction(query={"Session"})
    assert custom.redact_url(f"https://x/?SESSION={CANARY}&token=kept") == (
        f"https://x/?SESSION={PLACEHOLDER}&token=kept"
    )


def test_httpx_encoded_params_are_redacted() -> None:
    url = httpx.URL("https://example.com/", params={"api_key": f"{CANARY} /&=é", "q": "x"})
    assert R.redact_url(url) == f"https://example.com/?api_key={PLACEHOLDER}&q=x"


# Bodies


def test_no_sensitive_body_field_survives_at_any_depth() -> None:
    body = {
        "user": "alice",
        "Password": CANARY,
        "items": [{"token": CANARY}, [{"nested": {"client_secret": {"any": CANARY}}}]],
        "pair": ({"api_key": CANARY}, "kept"),
        "count": 3,
    }
    original = copy.deepcopy(body)
    redacted = R.redact_json(body)
    assert repr(redacted).count(CANARY) == 0
    assert redacted == {
        "user": "alice",
        "Password": PLACEHOLDER,
        "items": [{"token": PLACEHOLDER}, [{"nested": {"client_secret": PLACEHOLDER}}]],
        "pair": ({"api_key": PLACEHOLDER}, "kept"),
        "count": 3,
    }
    assert body == original


def test_body_fields_are_configurable() -> None:
    custom = Redaction(body_fields=["SSN"])
    assert custom.redact_json([{"ssn": CANARY, "password": "kept"}]) == [
        {"ssn": PLACEHOLDER, "password": "kept"}
    ]


def test_redact_json_copies_so_the_result_can_be_changed() -> None:
    body: dict[str, Any] = {"a": [1, 2]}
    redacted = R.redact_json(body)
    redacted["a"].append(3)
    assert body == {"a": [1, 2]}


def test_pathological_bodies_are_hidden_not_raised() -> None:
    cyclic: dict[str, Any] = {"password": CANARY}
    cyclic["self"] = cyclic
    assert R.redact_json(cyclic) == {"password": PLACEHOLDER, "self": PLACEHOLDER}
    deep: list[Any] = [{"password": CANARY}]
    for _ in range(10_000):
        deep = [deep]
    assert CANARY not in repr(R.redact_json(deep))
    assert R.redact_json("text") == "text"
    assert R.redact_json({1: CANARY, None: 2}) == {1: CANARY, None: 2}  # not field names


# Free text


def test_scrubber_removes_every_canary_form() -> None:
    scrub = R.scrubber(SENSITIVE_REQUEST, SENSITIVE_URL, body={"password": CANARY + "-body"})
    encoded = httpx.URL("https://x/", params={"token": CANARY + " /é"})
    scrub_encoded = R.scrubber(url=encoded)
    message = (
        f"failed: {SENSITIVE_URL} with headers {dict(SENSITIVE_REQUEST)} "
        f"token {CANARY}, credentials alice:{CANARY}, body {CANARY}-body"
    )
    assert scrub(message).count(CANARY) == 0
    assert scrub_encoded(f"GET {encoded} sent {CANARY} /é").count(CANARY) == 0
    assert scrub("nothing secret here") == "nothing secret here"


def test_scrubber_replaces_with_the_placeholder() -> None:
    scrub = Redaction(placeholder="***").scrubber({"X-Api-Key": CANARY})
    assert scrub(f"key={CANARY}!") == "key=***!"


def test_scrubber_finds_secrets_in_odd_headers() -> None:
    scrub = R.scrubber(
        [
            ("Authorization", f'Digest username="alice", response="{CANARY}"'),
            ("X-Api-Key", f" {CANARY}-padded "),
            ("Authorization", f"Custom-{CANARY} other"),
            (b"Cookie", f'a=b; c="{CANARY}-quoted"; {CANARY}-bare'.encode()),
            ("Proxy-Authorization", "Basic !!!not-base64!!!"),
            ("Authorization", "Basic " + base64.b64encode(b"\xff\xfe:" + CANARY.encode()).decode()),
        ]
    )
    text = f"{CANARY}-padded Custom-{CANARY} {CANARY}-quoted {CANARY}-bare {CANARY}"
    assert scrub(text).count(CANARY) == 0


def test_short_values_are_not_scrubbed_from_text() -> None:
    """Scrubbing "abc" out of every message would garble them and protect nothing."""
    short = "x" * (MIN_SECRET_LENGTH - 1)
    scrub = R.scrubber({"X-Api-Key": short, "X-Auth-Token": "abcd"})
    assert scrub(f"{short} abcd") == f"{short} {PLACEHOLDER}"
    assert not R.scrubber({"X-Api-Key": short})
    assert R.scrubber({"X-Api-Key": "abcd"})


def test_longer_secrets_are_replaced_first() -> None:
    scrub = R.scrubber({"X-Api-Key": "abcd", "X-Auth-Token": "abcdefgh"})
    assert scrub("abcdefgh abcd") == f"{PLACEHOLDER} {PLACEHOLDER}"


def test_a_placeholder_that_would_recreate_a_secret_deletes_instead() -> None:
    scrub = Redaction(placeholder="[REDACTED]").scrubber({"X-Api-Key": "DACT"})
    assert scrub("a DACT b") == "a  b"
    scrub = Redaction(placeholder="]x").scrubber({"X-Api-Key": "wxyz", "X-Auth-Token": "]xyz"})
    assert scrub("wxyzyz") == "yz"  # "]xyzyz" would hold "]xyz"


@pytest.mark.parametrize("placeholder", ["\\", "\\1", "\\g<0>", "$1"])
def test_the_placeholder_is_literal(placeholder: str) -> None:
    scrub = Redaction(placeholder=placeholder).scrubber({"X-Api-Key": CANARY})
    assert scrub(f"<{CANARY}>") == f"<{placeholder}>"


def test_scrubber_repr_shows_no_secret() -> None:
    scrub = R.scrubber({"X-Api-Key": CANARY})
    assert CANARY not in repr(scrub)
    assert repr(scrub) == "<Scrubber of 1 secret value(s)>"
    assert isinstance(scrub, Scrubber)


def test_scrubber_takes_bytes_text() -> None:
    scrub = R.scrubber({"X-Api-Key": CANARY})
    assert scrub(f"{CANARY}".encode()) == PLACEHOLDER  # type: ignore[arg-type]


# Options


def test_defaults() -> None:
    assert Redaction().headers == SENSITIVE_HEADERS
    assert Redaction().query == SENSITIVE_QUERY
    assert Redaction().placeholder == "[REDACTED]"
    extended = Redaction(headers=SENSITIVE_HEADERS | {"X-Tenant-Key"})
    assert "x-tenant-key" in extended.headers
    assert "authorization" in extended.headers


def test_names_are_stored_lower_case() -> None:
    options = Redaction(headers=["X-A", "x-a"], query=("Q",), body_fields={"F"})
    assert options.headers == frozenset({"x-a"})
    assert options.query == frozenset({"q"})
    assert options.body_fields == frozenset({"f"})


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"headers": "authorization"}, TypeError, "headers must be a collection of str names"),
        ({"headers": b"authorization"}, TypeError, "headers must be a collection"),
        ({"query": None}, TypeError, "query must be a collection"),
        ({"query": iter(["token"])}, TypeError, "query must be a collection"),
        ({"body_fields": ["password", 1]}, TypeError, "body_fields must hold only str names"),
        ({"headers": {""}}, ValueError, "headers must hold non-empty names"),
        ({"headers": ["x-key "]}, ValueError, "headers must hold non-empty names without"),
        ({"headers": ["X Tenant Key"]}, ValueError, "headers must be a header name"),
        ({"query": [" api_key "]}, ValueError, "query must hold non-empty names without"),
        ({"placeholder": None}, TypeError, "placeholder must be a str"),
    ],
)
def test_options_are_checked(options: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=f"^Redaction: {message}"):
        Redaction(**options)


def test_options_are_frozen() -> None:
    with pytest.raises(AttributeError):
        R.placeholder = "x"  # type: ignore[misc]


# Properties

# A token never holds whitespace or control characters; a cookie value also not ; , " or \.
tokens = st.text(
    st.characters(exclude_categories=("Z", "C"), exclude_characters=';,"\\'),
    min_size=MIN_SECRET_LENGTH,
    max_size=24,
)
texts = st.text(max_size=40)


def headers_with(secrets: list[str]) -> httpx.Headers:
    """Sensitive headers holding five *secrets* in every way a request can."""
    a, b, c, d, e = secrets
    pairs = [
        ("Authorization", f"Bearer {a}"),
        ("Proxy-Authorization", basic("alice", b)),
        ("Cookie", f"theme=dark; session={c}"),
        ("X-Api-Key", d),
        ("X-Auth-Token", e),
        ("Accept", "text/plain"),
    ]
    return httpx.Headers([(name.encode(), value.encode()) for name, value in pairs])


@given(st.lists(tokens, min_size=6, max_size=6), st.lists(texts, min_size=9, max_size=9), texts)
def test_scrubbed_text_never_contains_a_secret(
    secrets: list[str], filler: list[str], placeholder: str
) -> None:
    """Secrets from headers, query and body, anywhere in any text: none left, any placeholder."""
    *in_headers, in_query = secrets
    url = httpx.URL("https://example.com/", params={"q": "x", "access_token": in_query})
    body = {"items": [{"password": in_headers[0]}]}
    scrub = Redaction(placeholder=placeholder).scrubber(headers_with(in_headers), url, body=body)
    pieces = [*secrets, str(url), f"alice:{in_headers[1]}"]
    text = "".join(f + p for f, p in zip(filler[:-1], pieces, strict=True)) + filler[-1]
    scrubbed = scrub(text)
    for secret in secrets:
        assert secret not in scrubbed


DUMMY = "dummy"


@given(tokens, st.sampled_from(sorted(SENSITIVE_HEADERS)))
def test_redacted_headers_do_not_depend_on_the_secret(secret: str, name: str) -> None:
    """The output is the same whatever the secret was: nothing of it can leak."""

    def redacted(value: str) -> list[tuple[str, str]]:
        cookie = f"id={value}"
        shaped = {"authorization": f"Bearer {value}", "cookie": cookie, "set-cookie": cookie}
        return R.redact_headers(httpx.Headers([(name.encode(), shaped.get(name, value).encode())]))

    assert redacted(secret) == redacted(DUMMY)


@given(tokens, st.sampled_from(sorted(SENSITIVE_QUERY)), st.sampled_from(sorted(SENSITIVE_QUERY)))
def test_redacted_urls_do_not_depend_on_the_secret(secret: str, name: str, other: str) -> None:
    def redacted(value: str) -> str:
        params = {"page": "2", name: value, other: value}
        userinfo = f"u:{quote(value, safe='')}"
        return R.redact_url(httpx.URL(f"https://{userinfo}@example.com/p", params=params))

    assert redacted(secret) == redacted(DUMMY)


raw_values = st.text(
    st.characters(exclude_categories=("Z", "C"), exclude_characters="&#"),
    min_size=MIN_SECRET_LENGTH,
    max_size=24,
)


@given(raw_values, st.sampled_from(sorted(SENSITIVE_QUERY)), st.sampled_from([";", "&"]))
def test_a_raw_query_secret_is_hidden_whatever_it_holds(secret: str, name: str, sep: str) -> None:
    # Written into the query as it is: ";" and "=" inside a secret's value included,
    # and ";" or "&" before the parameter.
    def redacted(value: str) -> str:
        return R.redact_url(f"https://example.com/p?page=2{sep}{name}={value}&x=1")

    url = f"https://example.com/p?page=2{sep}{name}={secret}&x=1"
    assert redacted(secret) == redacted(DUMMY)
    assert secret not in R.scrubber(url=url)(f"GET {url} failed")


json_values = st.recursive(
    st.none() | st.integers() | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=20,
)


@given(tokens, json_values)
def test_redacted_bodies_do_not_depend_on_the_secret(secret: str, filler: Any) -> None:
    def body(value: str) -> dict[str, Any]:
        return {"data": [filler, {"Token": value}], "more": {"password": [value]}}

    original = body(secret)
    snapshot = copy.deepcopy(original)
    assert R.redact_json(original) == R.redact_json(body(DUMMY))
    assert original == snapshot


names = st.sampled_from(sorted(SENSITIVE_HEADERS)) | st.text(max_size=10)
raw = st.text() | st.binary()


@given(st.lists(st.tuples(names | st.binary(max_size=10), raw), max_size=6), raw, json_values, raw)
def test_odd_input_never_raises(pairs: list[Any], url: Any, body: Any, text: Any) -> None:
    """Any names, any str or bytes values, any URL text, any body: redacted, never raised."""
    assert len(R.redact_headers(pairs)) == len(pairs)
    assert isinstance(R.redact_url(url), str)
    R.redact_json(body)
    assert isinstance(R.scrubber(pairs, url, body=body)(text), str)


# Errors from the layers below the transport


def test_errors_from_the_next_transport_lose_the_requests_secrets(logs: list[Any]) -> None:
    from resilient.http import Transport
    from resilient.testing import run

    def refuse(request: httpx.Request) -> httpx.Response:
        cause = OSError(f"socket for {request.url} closed")
        try:
            raise cause
        except OSError as exc:
            message = f"cannot reach {request.url} with {request.headers['authorization']}"
            raise httpx.ConnectError(message, request=request) from exc

    transport = Transport(next_transport=httpx.MockTransport(refuse))

    async def main() -> BaseException:
        async with httpx.AsyncClient(transport=transport) as client:
            try:
                await client.get(
                    "https://api.example.com/v1?api_key=canary-key-0001",
                    headers={"Authorization": "Bearer canary-token-0002"},
                )
            except httpx.ConnectError as exc:
                return exc
        raise AssertionError

    error = run(main)
    texts = [str(error), repr(error), str(error.__cause__), repr(logs)]
    assert not [t for t in texts if "canary-key-0001" in t or "canary-token-0002" in t]
    assert "[REDACTED]" in str(error)
    assert "[REDACTED]" in str(error.__cause__)


def test_a_credential_with_a_line_break_is_scrubbed_as_errors_quote_it() -> None:
    # base64.encodebytes wraps at 76 columns: h11 refuses the value and quotes it
    # as repr() writes it, "\n" escaped, in "Illegal header value b'...'".
    wrapped = base64.encodebytes(f"service@tenant.example:{CANARY}-{CANARY}".encode()).decode()
    value = "Basic " + wrapped.strip()
    assert "\n" in value
    scrub = R.scrubber({"Authorization": value})
    quoted = f"Illegal header value {value.encode()!r}"
    assert CANARY not in scrub(quoted)
    assert not any(line in scrub(quoted) for line in wrapped.split())
    assert CANARY not in scrub(f"password {CANARY}-{CANARY} refused")  # decoded too


def test_a_tab_in_a_credential_does_not_make_its_scheme_a_secret() -> None:
    # A tab is allowed in a header value (RFC 9110 5.5): sent as it is, not quoted.
    scrub = R.scrubber({"Authorization": f"Bearer\t{CANARY}"})
    assert scrub(f'WWW-Authenticate: Bearer realm="api" for {CANARY}') == (
        f'WWW-Authenticate: Bearer realm="api" for {PLACEHOLDER}'
    )
    wrapped = R.scrubber({"Authorization": f"Bearer\n{CANARY}"})
    assert wrapped("Bearer realm") == "Bearer realm"  # the scheme alone on its line, too


def test_secret_fields_of_a_form_body_are_scrubbed() -> None:
    from resilient.http._redact import body_fields

    form = body_fields(
        f"user=ada&client_secret={CANARY}&client_secret=second-{CANARY}".encode(),
        "application/x-www-form-urlencoded; charset=utf-8",
    )
    assert form == {"user": ["ada"], "client_secret": [CANARY, f"second-{CANARY}"]}
    assert R.redact_json(form) == {"user": ["ada"], "client_secret": PLACEHOLDER}
    scrub = R.scrubber(body=form)
    assert scrub(f"rejected {CANARY} and second-{CANARY}") == (
        f"rejected {PLACEHOLDER} and {PLACEHOLDER}"
    )
    assert body_fields(b"a=1", "text/plain") is None


def test_a_form_bodys_secret_is_scrubbed_from_errors_from_below() -> None:
    from resilient.http import Transport
    from resilient.testing import run

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError(f"cannot send {request.content.decode()}", request=request)

    transport = Transport(next_transport=httpx.MockTransport(refuse))

    async def main() -> str:
        async with httpx.AsyncClient(transport=transport) as client:
            with pytest.raises(httpx.ConnectError) as info:
                await client.post("https://api.example/token", data={"client_secret": CANARY})
        return str(info.value)

    message = run(main)
    assert CANARY not in message
    assert f"client_secret={PLACEHOLDER}" in message


KEYED_URL = "https://api.example.com/v1?api_key=canary-key-0001"


def _oserror(url: str) -> BaseException:
    # str() of an OSError made with (errno, strerror) reads strerror, not args.
    return ConnectionRefusedError(111, f"refused {url}")


def _in_a_group(url: str) -> BaseException:
    return BaseExceptionGroup("attempts", [ValueError(f"bad answer from {url}")])


def _as_context(url: str) -> BaseException:
    # A cause and, beside it, the error that was being handled: both are reported.
    error = httpx.ConnectError("cannot connect")
    error.__cause__ = OSError("no route")
    error.__context__ = TimeoutError(f"timed out on {url}")
    return error


def _with_a_note(url: str) -> BaseException:
    error = httpx.ConnectError("cannot connect")
    error.__notes__ = [f"while calling {url}"]  # add_note() from 3.11
    return error


@pytest.mark.parametrize("make", [_oserror, _in_a_group, _as_context, _with_a_note])
def test_every_text_of_an_error_from_below_is_scrubbed(
    make: Callable[[str], BaseException],
) -> None:
    """str(), the traceback (notes, causes, contexts, group members): no secret left."""
    from resilient import Pipeline
    from resilient.http import Transport
    from resilient.testing import run

    def refuse(request: httpx.Request) -> httpx.Response:
        raise make(str(request.url))

    # No Retry: a retry made while handling the first error would chain it as context.
    transport = Transport(Pipeline(), next_transport=httpx.MockTransport(refuse))

    async def main() -> BaseException:
        async with httpx.AsyncClient(transport=transport) as client:
            try:
                await client.get(KEYED_URL)  # the line a traceback shows holds no secret
            except BaseException as exc:
                return exc
        raise AssertionError

    error = run(main)
    # A traceback shows the cause rather than the context: both are read here.
    hidden = [error.__context__, getattr(error, "__notes__", None)]
    shown = "".join(traceback.format_exception(error)) + repr(hidden)
    assert "[REDACTED]" in shown
    assert "canary-key-0001" not in shown


def test_an_error_that_refuses_a_scrubbed_text_is_still_the_one_raised() -> None:
    """An OSError subclass whose strerror is a read-only property: the scrub leaves that
    text alone rather than raise an AttributeError in the error's place."""
    from resilient import Pipeline
    from resilient.http import Transport
    from resilient.testing import run

    class ProxyRefusedError(OSError):
        @property
        def strerror(self) -> str:  # type: ignore[override]
            return "proxy refused"

    def refuse(_: httpx.Request) -> httpx.Response:
        raise ProxyRefusedError(111, "refused")

    transport = Transport(Pipeline(), next_transport=httpx.MockTransport(refuse))

    async def main() -> BaseException:
        async with httpx.AsyncClient(transport=transport) as client:
            try:
                await client.get(KEYED_URL)
            except BaseException as exc:
                return exc
        raise AssertionError

    assert isinstance(run(main), ProxyRefusedError)


@pytest.mark.parametrize("secrets", ["sk-live-123456", b"sk-live-123456", ["ok12", 3]])
def test_a_scrubber_refuses_what_is_not_a_collection_of_str(secrets: Any) -> None:
    with pytest.raises(TypeError, match="Scrubber: secrets must") as info:
        Scrubber(secrets)
    assert "sk-live" not in str(info.value)  # a secret is never quoted


def test_a_body_of_shared_containers_is_walked_once_per_container(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Twenty levels, each holding the next one twice: 2**20 paths, 20 containers.
    body: Any = {"password": "hunter2-secret"}
    for _ in range(20):
        body = [body, body]
    redaction = Redaction()
    walks = []
    walk = Redaction._json
    monkeypatch.setattr(
        Redaction, "_json", lambda self, *args: walks.append(1) or walk(self, *args)
    )
    copy = redaction.redact_json(body)
    assert len(walks) <= 3 * 21  # was 2**21: a walk per path
    leaf = copy
    for _ in range(20):
        assert leaf[0] is leaf[1]
        leaf = leaf[0]
    assert leaf == {"password": "[REDACTED]"}
    visits = []
    find = Redaction._body_secrets
    monkeypatch.setattr(
        Redaction, "_body_secrets", lambda self, *args: visits.append(1) or find(self, *args)
    )
    assert redaction.scrubber(body=body)("pw=hunter2-secret") == "pw=[REDACTED]"
    assert len(visits) <= 3 * 21  # was 2**21


def test_a_secret_fields_shared_containers_are_walked_once_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from resilient.http import _redact

    value: Any = ["hunter2-secret"]
    for _ in range(20):
        value = [value, value]
    walks = []
    walk = _redact._leaves
    monkeypatch.setattr(_redact, "_leaves", lambda *args: walks.append(1) or walk(*args))
    assert Redaction().scrubber(body={"password": value})("pw=hunter2-secret") == "pw=[REDACTED]"
    assert len(walks) <= 3 * 22  # was 2**21
