"""HTML mail made safe to show: nh3's allowlist (no script, no event handlers, no forms, no
``style`` attributes or elements, no frames or objects), links that open apart from the app.
Remote images stay in the markup; the page that shows the result blocks them (its
Content-Security-Policy) until the reader allows them for that message, and ``safe_html``
says whether there are any to allow."""

from __future__ import annotations

import nh3

URL_SCHEMES = frozenset({"http", "https", "mailto", "cid"})
_REMOTE = ("http://", "https://", "//")
_SOURCES = frozenset({"src", "background", "poster"})


def safe_html(html: str) -> tuple[str, bool]:
    """(the sanitised markup, whether it names remote resources)."""
    remote = False

    def note_remote(tag: str, attribute: str, value: str) -> str | None:
        nonlocal remote
        if attribute in _SOURCES and value.strip().lower().startswith(_REMOTE):
            remote = True
        return value

    cleaned = nh3.clean(
        html,
        url_schemes=set(URL_SCHEMES),
        attribute_filter=note_remote,
        set_tag_attribute_values={"a": {"target": "_blank"}},
        link_rel="noopener noreferrer",
    )
    return cleaned, remote
