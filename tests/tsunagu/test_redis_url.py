"""Sentinel URLs (PROTOCOL.md section 10): parsing only, no Redis."""

from __future__ import annotations

import pytest

from tsunagu.redis_url import SentinelUrl, is_sentinel_url, parse_sentinel_url


def test_three_sentinels_with_acl_user_service_and_db() -> None:
    url = "redis+sentinel://signaling:s3cr%40t@198.18.1.2:26379,198.18.2.2:26380,h3/tsunagu/2"
    assert parse_sentinel_url(url) == SentinelUrl(
        sentinels=(("198.18.1.2", 26379), ("198.18.2.2", 26380), ("h3", 26379)),
        service="tsunagu", db=2, username="signaling", password="s3cr@t")


def test_password_without_user_and_default_db() -> None:
    target = parse_sentinel_url("redis+sentinel://:pw@host:1/svc")
    assert (target.username, target.password, target.db) == (None, "pw", 0)
    target = parse_sentinel_url("redis+sentinel://pw@host:1/svc/")
    assert (target.username, target.password, target.db) == (None, "pw", 0)
    assert parse_sentinel_url("redis+sentinel://host/svc").password is None


def test_password_may_contain_at_and_colon_when_quoted_or_not() -> None:
    target = parse_sentinel_url("redis+sentinel://u:a:b@c@host:1/svc")
    assert (target.username, target.password) == ("u", "a:b@c")


def test_ipv6_in_brackets() -> None:
    target = parse_sentinel_url("redis+sentinel://[2001:db8::1]:26379,[::1]/svc/1")
    assert target.sentinels == (("2001:db8::1", 26379), ("::1", 26379))


def test_tls_scheme_and_options() -> None:
    target = parse_sentinel_url("rediss+sentinel://h:1/svc?ssl_ca_certs=/etc/ca.pem")
    assert target.tls and target.tls_options == {"ssl_ca_certs": "/etc/ca.pem"}
    kwargs = target.node_kwargs()
    assert kwargs["ssl"] is True and kwargs["ssl_cert_reqs"] == "required"
    assert kwargs["ssl_ca_certs"] == "/etc/ca.pem"
    assert target.sentinel_kwargs("sp") == {"password": "sp", "ssl": True,
                                            "ssl_cert_reqs": "required",
                                            "ssl_ca_certs": "/etc/ca.pem"}


def test_plain_scheme_has_no_tls_arguments() -> None:
    target = parse_sentinel_url("redis+sentinel://u:p@h:1/svc/4")
    assert target.node_kwargs() == {"db": 4, "username": "u", "password": "p"}
    assert target.sentinel_kwargs(None) == {"password": None}
    assert target.sentinel_kwargs("") == {"password": None}


@pytest.mark.parametrize("url", [
    "redis://h:1/0", "unix:///tmp/r.sock", "http://h/svc", "redis+sentinel:/h/svc",
])
def test_other_schemes_are_not_sentinel_urls(url: str) -> None:
    assert not is_sentinel_url(url)
    with pytest.raises(ValueError):
        parse_sentinel_url(url)


def test_scheme_is_case_insensitive() -> None:
    assert is_sentinel_url("Redis+Sentinel://h/svc")
    assert parse_sentinel_url("REDISS+SENTINEL://h/svc").tls


@pytest.mark.parametrize(("url", "complaint"), [
    ("redis+sentinel://h:1", "names its service"),
    ("redis+sentinel://h:1/", "names its service"),
    ("redis+sentinel://h:1/svc/x", "must be a number"),
    ("redis+sentinel://h:1/svc/0/extra", "/SERVICE or /SERVICE/DB"),
    ("redis+sentinel://h:1,,h2:2/svc", "no empty entries"),
    ("redis+sentinel://:1/svc", "no host"),
    ("redis+sentinel://h:99999/svc", "bad port"),
    ("redis+sentinel://h:abc/svc", "bad port"),
    ("redis+sentinel://2001:db8::1/svc", "brackets"),
    ("redis+sentinel://[::1/svc", "bad IPv6"),
    ("redis+sentinel://h/svc?ssl_ca_certs=/ca.pem", "need a rediss+sentinel"),
    ("rediss+sentinel://h/svc?ssl_cert_reqs=none", "unknown Sentinel URL option"),
])
def test_malformed_urls_say_why(url: str, complaint: str) -> None:
    with pytest.raises(ValueError, match=complaint.replace("+", r"\+")):
        parse_sentinel_url(url)


def test_errors_never_echo_the_password() -> None:
    with pytest.raises(ValueError) as info:
        parse_sentinel_url("redis+sentinel://u:hunter22@h:1/svc/x")
    assert "hunter22" not in str(info.value)
