"""URLs never carry credentials: `http://user:password@host` is refused with one line that says how
to authenticate instead, and a URL shown in a message has any userinfo masked.

Why refuse rather than use them: the URL is printed in progress lines, error messages and stored in
result files (config.url), so a password in it would end up on screens, in CI logs and in reports.
A header (`--header 'Authorization: Basic ...'`) is sent but never recorded.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from tfsbench.payloads.errors import InputError


def redact_url(url: str) -> str:
    """The URL with any userinfo replaced by '***' (for messages)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable URL>"
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]).geturl()


def refuse_userinfo(url: str, where: str = "--url") -> None:
    """Raise InputError (without the password) if `url` has a user name or password in it."""
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return  # the caller's own validation reports an unparsable URL
    if "@" in netloc:
        raise InputError(
            f"{where} must not contain a user name or password ({redact_url(url)}); "
            "send credentials with --header 'Authorization: ...'"
        )
