# ruff: noqa: E501
"""Policy, reversible redaction and the one-call `screen` helper."""

from __future__ import annotations

import pytest

from offload_mcp.privacy import Redactor, decide, scan, scan_packet, screen

SECRET = "ghp_" + "x7Kq9ZrT2mVbN4pL8sWc1yHd5jFa3gEu6oRi"
EMAIL = "maria.gonzalez84@gmail.com"
CLINICAL = "Patient: Maria Gonzalez\nDOB: 03/12/1984\nDiagnosis: type 2 diabetes, metformin 500 mg"


@pytest.mark.parametrize(
    ("trust", "secret", "pii", "phi"),
    [
        ("local", "allow", "allow", "allow"),
        ("trusted", "redact", "allow", "block"),
        ("untrusted", "redact", "redact", "block"),
        ("no-such-level", "redact", "redact", "block"),
    ],
)
def test_default_policy(trust: str, secret: str, pii: str, phi: str) -> None:
    assert (decide(trust, "secret"), decide(trust, "pii"), decide(trust, "phi")) == (
        secret,
        pii,
        phi,
    )


def test_overrides_win_and_are_checked() -> None:
    assert decide("trusted", "pii", {"pii": "block"}) == "block"
    assert decide("untrusted", "phi", {"phi": "redact"}) == "redact"
    with pytest.raises(ValueError, match="not one of"):
        decide("local", "pii", {"pii": "maybe"})


def test_same_value_same_placeholder_and_restore() -> None:
    redactor = Redactor()
    text = f"token {SECRET} mail {EMAIL} again {SECRET}"
    redacted = redactor.redact(text, scan(text))
    assert redacted == "token [[SECRET_1]] mail [[EMAIL_2]] again [[SECRET_1]]"
    assert redactor.restore(redacted) == text
    assert redactor.restore({"a": ["[[EMAIL_2]]", 3], "[[SECRET_1]]": None}) == {
        "a": [EMAIL, 3],
        SECRET: None,
    }
    assert redactor.restore("[[SECRET_9]] unknown stays") == "[[SECRET_9]] unknown stays"
    assert SECRET not in repr(redactor)


def test_untrusted_redacts_secrets_and_pii_across_texts() -> None:
    screened = screen([f"key={SECRET}", f"from {EMAIL}", f"cc {EMAIL}"], "untrusted")
    assert not screened.blocked
    assert screened.texts == ("key=[[SECRET_1]]", "from [[EMAIL_2]]", "cc [[EMAIL_2]]")
    assert screened.restore("use [[SECRET_1]] for [[EMAIL_2]]") == f"use {SECRET} for {EMAIL}"
    assert screened.redacted == {"github_token": 1, "email": 2}
    assert SECRET not in screened.summary() and EMAIL not in screened.summary()


def test_trusted_keeps_pii_and_local_keeps_everything() -> None:
    found = scan_packet([f"key={SECRET} from {EMAIL}"])
    trusted = found.screen("trusted")
    assert trusted.texts == (f"key=[[SECRET_1]] from {EMAIL}",)
    local = found.screen("local")
    assert local.texts == (f"key={SECRET} from {EMAIL}",)
    assert local.restore("x") == "x"


def test_phi_blocks_and_names_kinds_only() -> None:
    found = scan_packet([CLINICAL])
    for trust in ("trusted", "untrusted"):
        screened = found.screen(trust)
        assert screened.blocked and screened.texts == ()
        assert "patient_name" in screened.blocked_kinds
        assert "Maria" not in screened.reason and "1984" not in screened.reason
        assert screened.summary().startswith("blocked:")
    assert found.screen("local").texts == (CLINICAL,)


def test_clean_packet_passes_untouched() -> None:
    screened = screen(["def add(a, b):\n    return a + b\n"], "untrusted")
    assert not screened.blocked and screened.counts == {} and screened.summary() == "clean"


def test_privacy_is_not_imported_at_package_import() -> None:
    import subprocess
    import sys

    code = "import offload_mcp.server, sys; print(any(m.startswith('offload_mcp.privacy') or m == 're2' for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
