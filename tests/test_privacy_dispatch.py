"""The privacy gate on the one path: planted secrets, PII and PHI against three trust levels.

Nothing policy forbids may reach a fake provider's recorded requests, the ledger file, the
log file or an error message; a local provider gets the packet whole.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from offload_mcp.config import Paths
from tests.fake_openai import FakeOpenAI

pytestmark = pytest.mark.anyio

SECRETS = ["AKIAQ3EGXMPL7RTY5ZWB", "ghp_R7tq2LbW9xKd4mZp8NvJc3HsY6fQe1Ua0GiT"]
PII = ["jane.doe@acme-corp.io", "(212) 874-2368"]
PHI = ["Maria Gonzalez", "00482913"]
CODE = (
    f"aws_access_key_id = {SECRETS[0]}\n"
    f"GITHUB_TOKEN={SECRETS[1]}\n"
    f"# owner: {PII[0]}, on call {PII[1]}\n"
    "def total(xs):\n    return sum(xs)\n"
)
NOTE = (
    f"Discharge summary. Patient: {PHI[0]}, MRN: {PHI[1]}. "
    "Diagnosis: type 2 diabetes mellitus. Metformin 500 mg twice daily."
)


@pytest.fixture
def fakes() -> Iterator[dict[str, FakeOpenAI]]:
    with FakeOpenAI() as untrusted, FakeOpenAI() as trusted, FakeOpenAI() as local:
        yield {"open": untrusted, "paid": trusted, "home": local}


def configure(
    paths: Paths, fakes: dict[str, FakeOpenAI], chain: list[str], extra: str = ""
) -> None:
    paths.config_file.write_text(
        f"""
{extra}
[providers.open]
base_url = "{fakes["open"].url}"
model = "free-model"
trust = "untrusted"

[providers.paid]
base_url = "{fakes["paid"].url}"
model = "paid-model"
trust = "trusted"

[providers.home]
base_url = "{fakes["home"].url}"
model = "local-model"
trust = "local"

[chains]
offload = {chain!r}
""".replace("'", '"')
    )


@pytest.fixture
def log_file(paths: Paths) -> Iterator[Path]:
    """Server logs to the data dir's file, as `serve` sets it up."""
    from offload_mcp.logs import setup_logging

    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    setup_logging(paths.log_file, "DEBUG")
    yield paths.log_file
    for handler in list(root.handlers):
        handler.close()
        root.removeHandler(handler)
    root.handlers[:], root.level = saved


async def call(client: Client, **arguments: Any) -> tuple[bool, str]:
    result = await client.call_tool("offload", arguments)
    return result.is_error, result.content[0].text  # type: ignore[union-attr]


def everything_on_disk(paths: Paths) -> bytes:
    return b"".join(p.read_bytes() for p in paths.data_dir.rglob("*") if p.is_file())


def sent(fake: FakeOpenAI) -> str:
    return "\n".join(r.raw.decode("utf-8", "replace") for r in fake.requests)


async def test_untrusted_gets_secrets_and_pii_redacted_and_claude_gets_them_back(
    paths: Paths, fakes: dict[str, FakeOpenAI], connect: Any, log_file: Path
):
    configure(paths, fakes, ["open"])
    fakes["open"].reply("Rotate [[SECRET_1]] now and tell [[EMAIL_3]].")
    client = await connect()
    is_error, text = await call(client, task="Review this config.", text=CODE)
    assert not is_error, text
    assert text.startswith(f"Rotate {SECRETS[0]} now and tell {PII[0]}.")
    request = sent(fakes["open"])
    for value in SECRETS + PII:
        assert value not in request
    assert "[[SECRET_1]]" in request and "[[EMAIL_3]]" in request
    assert "def total(xs)" in request, "the rest of the packet is intact"
    disk = everything_on_disk(paths)
    for value in SECRETS + PII:
        assert value.encode() not in disk, "neither the ledger nor the log holds a value"
    with sqlite3.connect(paths.ledger_file) as conn:
        privacy = conn.execute("SELECT privacy FROM calls").fetchone()[0]
    assert privacy.startswith("redacted:") and "email=1" in privacy


async def test_trusted_gets_pii_but_not_secrets(
    paths: Paths, fakes: dict[str, FakeOpenAI], connect: Any
):
    configure(paths, fakes, ["paid"])
    fakes["paid"].reply("ok")
    assert not (await call(await connect(), task="Review.", text=CODE))[0]
    request = sent(fakes["paid"])
    assert all(value not in request for value in SECRETS)
    assert all(value in request for value in PII)


async def test_phi_skips_cloud_providers_and_goes_local_whole(
    paths: Paths, fakes: dict[str, FakeOpenAI], connect: Any
):
    configure(paths, fakes, ["open", "paid", "home"])
    fakes["home"].reply("Summary: diabetic patient on metformin.")
    is_error, text = await call(await connect(), task="Summarise.", text=NOTE + "\n" + CODE)
    assert not is_error, text
    assert fakes["open"].requests == [] and fakes["paid"].requests == []
    request = sent(fakes["home"])
    assert all(value in request for value in PHI + SECRETS + PII), "local sees everything"


async def test_blocked_everywhere_names_kinds_and_allowed_providers_not_values(
    paths: Paths, fakes: dict[str, FakeOpenAI], connect: Any, log_file: Path
):
    configure(paths, fakes, ["open", "paid"])
    is_error, text = await call(await connect(), task="Summarise.", text=NOTE)
    assert is_error
    assert "open (untrusted): packet holds data this provider's privacy policy blocks" in text
    assert "patient_name x1" in text and "medical_record_number x1" in text
    assert "Providers whose trust level may see this packet:" in text and "home" in text
    for value in PHI:
        assert value not in text
        assert value.encode() not in everything_on_disk(paths)
    assert fakes["open"].requests == [] and fakes["paid"].requests == []


async def test_provider_override_can_allow_a_category(
    paths: Paths, fakes: dict[str, FakeOpenAI], connect: Any
):
    configure(paths, fakes, ["paid"])
    text = paths.config_file.read_text().replace(
        'trust = "trusted"', 'trust = "trusted"\nprivacy = { phi = "redact" }'
    )
    paths.config_file.write_text(text)
    fakes["paid"].reply("ok")
    assert not (await call(await connect(), task="Summarise.", text=NOTE))[0]
    assert all(value not in sent(fakes["paid"]) for value in PHI)


async def test_cached_answers_are_stored_redacted_and_restored(
    paths: Paths, fakes: dict[str, FakeOpenAI], connect: Any
):
    configure(paths, fakes, ["open"])
    fakes["open"].reply('{"owner": "[[EMAIL_3]]"}')
    client = await connect()
    schema = {"type": "object", "properties": {"owner": {"type": "string"}}}
    first = await call(client, task="Who owns it?", text=CODE, schema=schema)
    second = await call(client, task="Who owns it?", text=CODE, schema=schema)
    assert first[1].startswith(f'{{"owner":"{PII[0]}"}}')
    assert second[1].startswith(f'{{"owner":"{PII[0]}"}}') and "from cache" in second[1]
    assert len(fakes["open"].requests) == 1
    assert PII[0].encode() not in everything_on_disk(paths)


async def test_content_logging_is_opt_in_and_redacted(
    paths: Paths, fakes: dict[str, FakeOpenAI], connect: Any
):
    configure(paths, fakes, ["home"], extra="[ledger]\nlog_content = true\n")
    fakes["home"].reply(f"The key {SECRETS[0]} belongs to {PII[0]}.")
    assert not (await call(await connect(), task="Whose key?", text=CODE))[0]
    with sqlite3.connect(paths.ledger_file) as conn:
        content = conn.execute("SELECT content FROM calls").fetchone()[0]
    assert "Whose key?" in content and "[[SECRET_1]]" in content
    for value in SECRETS + PII:
        assert value not in content


async def test_without_opt_in_no_content_is_stored(
    paths: Paths, fakes: dict[str, FakeOpenAI], connect: Any
):
    configure(paths, fakes, ["home"])
    fakes["home"].reply("ok")
    assert not (await call(await connect(), task="Whose key?", text=CODE))[0]
    with sqlite3.connect(paths.ledger_file) as conn:
        assert conn.execute("SELECT content FROM calls").fetchone() == (None,)
