"""``enclave library`` and ``enclave label``: the host console administers libraries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.frontends.webserver import CliError, cli


def test_library_and_label_administration(tmp_path: Path) -> None:
    data = tmp_path / "deployment"
    cli(data, "init")
    cli(data, "tenant", "create", "acme", "--domain", "acme.example")
    cli(data, "group", "add", "acme", "legal")
    out = cli(data, "library", "create", "Contracts", "--tenant", "acme", "--keep-versions", "5")
    assert "library Contracts created" in out
    cli(data, "library", "grant", "Contracts", "write", "--tenant", "acme", "--group", "legal")
    cli(data, "library", "grant", "Contracts", "read", "--tenant", "acme", "--everyone")
    cli(data, "library", "hold", "Contracts", "--tenant", "acme", "--on")
    listed = json.loads(cli(data, "library", "list", "--tenant", "acme", "--json"))
    assert [(r["name"], r["personal"], r["keep_versions"]) for r in listed] == [
        ("Contracts", False, 5)
    ]
    cli(data, "label", "define", "SECRET", "--rank", "40", "--tenant", "acme",
        "--managed-download-only", "--share-group", "legal")  # fmt: skip
    cli(data, "label", "remove", "SECRET", "--tenant", "acme")
    with pytest.raises(CliError, match="no library Missing"):
        cli(data, "library", "grant", "Missing", "read", "--tenant", "acme", "--everyone")
    with pytest.raises(CliError, match="exactly one"):
        cli(data, "library", "grant", "Contracts", "read", "--tenant", "acme")
    audit = cli(data, "audit", "export", "--tenant", "acme")
    for action in ("library.create", "library.grant", "library.hold", "label.define"):
        assert action in audit
