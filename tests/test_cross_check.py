"""`cross_check` end to end, in process, against loopback fakes of three wire formats.

Families: `openai` (OpenAI-compatible fake serving gpt-oss), `google` (the Gemini API fake),
`alibaba` (the Ollama fake serving qwen) and `meta` (an OpenAI-compatible fake serving llama).
Every test names its providers in a `cross_check` chain, so no preset (and no real `codex`) is
ever asked.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from offload_mcp.config import Paths, build_settings
from offload_mcp.crosscheck.families import (
    ANTHROPIC,
    choose,
    family_of,
    model_family,
    reviewer_families,
)
from offload_mcp.crosscheck.report import agreement
from offload_mcp.crosscheck.run import Answer
from offload_mcp.crosscheck.verdict import SCHEMA, Problem, Verdict, spots
from offload_mcp.errors import InvalidRequest
from tests.fake_gemini import FakeGemini
from tests.fake_ollama import FakeOllama
from tests.fake_openai import FakeOpenAI, closed_port_url

pytestmark = pytest.mark.anyio

DIFF = """\
--- a/app.py
+++ b/app.py
@@ -10,3 +10,4 @@
 def mean(xs):
-    return sum(xs) / len(xs)
+    if not xs:
+        return 0
+    return sum(xs) / len(xs) + 1
"""
QUESTION = "Is this change to mean() correct?"
SECRET = "ghp_R7tq2LbW9xKd4mZp8NvJc3HsY6fQe1Ua0GiT"


def verdict(kind: str = "agree", problems: list[tuple[str, int, str]] = (), **fields: Any) -> str:  # type: ignore[assignment]
    body = {
        "verdict": kind,
        "problems": [{"file": f, "line": n, "issue": i} for f, n, i in problems],
        "confidence": 0.8,
        "summary": f"Looks {kind}.",
    }
    return json.dumps(body | fields)


@pytest.fixture
def oa() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def gg() -> Iterator[FakeGemini]:
    with FakeGemini() as fake:
        yield fake


@pytest.fixture
def ll() -> Iterator[FakeOllama]:
    with FakeOllama() as fake:
        yield fake


@pytest.fixture
def mt() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OA", "OA2", "GG", "MT", "GONE"):
        monkeypatch.setenv(f"{name}_KEY", f"sk-{name.lower()}-test-key")


def provider(name: str, url: str, model: str, trust: str = "untrusted", **extra: str) -> str:
    lines = [f"[providers.{name}]", f'base_url = "{url}"', f'model = "{model}"']
    lines += [f'trust = "{trust}"', f'key_env = "{name.upper()}_KEY"']
    lines += [f"{key} = {value}" for key, value in extra.items()]
    return "\n".join(lines)


def openai(fake: FakeOpenAI, name: str = "oa", **extra: str) -> str:
    return provider(name, fake.url, "gpt-oss-120b", **extra)


def gemini(fake: FakeGemini, **extra: str) -> str:
    return provider("gg", f"{fake.url}/v1beta", "gemini-2.5-flash", kind='"gemini"', **extra)


def ollama(fake: FakeOllama) -> str:
    return "\n".join(
        [
            "[providers.ll]",
            f'base_url = "{fake.url}"',
            'kind = "ollama"',
            'model = "qwen2.5:3b"',
            'trust = "local"',
        ]
    )


def meta(fake: FakeOpenAI) -> str:
    return provider("mt", fake.url, "llama-3.3-70b-versatile")


def configure(paths: Paths, chain: list[str], *providers: str) -> None:
    body = "\n\n".join(providers)
    paths.config_file.write_text(f"[chains]\ncross_check = {json.dumps(chain)}\n\n{body}\n")


async def call(client: Client, **arguments: Any) -> tuple[bool, str]:
    result = await client.call_tool("cross_check", {"question": QUESTION} | arguments)
    assert result.structured_content is None
    return result.is_error, result.content[0].text  # type: ignore[union-attr]


def ledger(paths: Paths) -> list[tuple[str, str, str]]:
    with sqlite3.connect(paths.ledger_file) as conn:
        rows = conn.execute("SELECT provider, tool, outcome FROM calls ORDER BY id").fetchall()
    return sorted(rows)


def sent(fake: FakeOpenAI | FakeGemini | FakeOllama) -> str:
    return "\n".join(r.raw.decode() for r in fake.requests if r.method == "POST")


def lines(text: str) -> dict[str, str]:
    """The result's family lines by family name, plus the agreement and footer lines."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        head = line.split(":", 1)[0].split(" via ")[0]
        found[head] = line
    return found


# --- end to end --------------------------------------------------------------------------


async def test_two_families_agree(paths: Paths, oa: FakeOpenAI, gg: FakeGemini, connect: Any):
    configure(paths, ["oa", "gg"], openai(oa), gemini(gg))
    oa.reply(verdict("agree"), usage={"prompt_tokens": 300, "completion_tokens": 40})
    gg.reply(verdict("agree", confidence=0.6))
    is_error, text = await call(await connect(), diff=DIFF)
    assert not is_error, text
    by = lines(text)
    assert by["openai"].startswith("openai via oa (fake-model): agree, confidence 0.80.")
    assert by["google"].startswith("google via gg (gemini-2.5-flash): agree, confidence 0.60.")
    assert "Agreement: both say agree. No problems reported." in text
    assert text.splitlines()[-1].startswith("[cross_check: 2 of 2 families answered, 312->")
    # the same bounded packet to each: question, diff and the verdict schema
    for fake in (oa, gg):
        assert QUESTION in sent(fake) and "return sum(xs) / len(xs) + 1" in sent(fake)
    assert oa.requests[-1].body["response_format"]["json_schema"]["schema"] == SCHEMA
    gemini_config = gg.calls[-1].body["generationConfig"]
    assert gemini_config["responseJsonSchema"] == SCHEMA
    assert ledger(paths) == [("gg", "cross_check", "ok"), ("oa", "cross_check", "ok")]


async def test_disagreement_points_at_the_places(
    paths: Paths, oa: FakeOpenAI, gg: FakeGemini, connect: Any
):
    configure(paths, ["oa", "gg"], openai(oa), gemini(gg))
    oa.reply(
        verdict(
            "disagree",
            [
                ("app.py", 14, "Adds 1 to every mean, so mean([2]) returns 3."),
                ("app.py", 12, "An empty list returns 0, hiding the caller's bug."),
                ("./app.py", 0, "No test covers the new branch."),
            ],
        )
    )
    gg.reply(verdict("agree", [("src/app.py", 15, "The + 1 looks deliberate but is odd.")]))
    is_error, text = await call(await connect(), diff=DIFF)
    assert not is_error, text
    by = lines(text)
    assert "disagree" in by["openai"] and "app.py:14 Adds 1 to every mean" in by["openai"]
    assert "Problems: src/app.py:15 The + 1 looks deliberate" in by["google"]
    summary = by["Disagreement"]
    assert summary.startswith("Disagreement: openai disagree, google agree.")
    # line 14 and src/app.py:15 are one place; the other two only openai saw
    assert "Found by both: app.py:14." in summary
    assert "Only openai: app.py:12, app.py." in summary


async def test_a_slow_family_is_cut_at_the_timeout(
    paths: Paths, oa: FakeOpenAI, ll: FakeOllama, mt: FakeOpenAI, connect: Any
):
    configure(paths, ["oa", "ll", "mt"], openai(oa), ollama(ll), meta(mt))
    oa.reply(verdict("agree"))
    ll.reply(verdict("agree"))
    mt.hang(60)
    client = await connect()
    started = time.monotonic()
    is_error, text = await call(client, diff=DIFF, timeout_s=3)
    took = time.monotonic() - started
    assert not is_error, text
    assert 2.5 < took < 15, took
    by = lines(text)
    assert by["meta"] == "meta: no answer. mt: no answer within the 3 s timeout."
    assert "openai via oa" in by["openai"] and "alibaba via ll (qwen2.5:3b)" in by["alibaba"]
    assert "Agreement: both say agree." in text
    assert "2 of 3 families answered" in text
    # the cancelled call is settled in the ledger, not left reserved
    assert ("mt", "cross_check", "cancelled") in ledger(paths)


async def test_malformed_answer_twice_moves_to_the_familys_next_provider(
    paths: Paths, oa: FakeOpenAI, mt: FakeOpenAI, ll: FakeOllama, connect: Any
):
    with FakeOpenAI() as second:
        configure(
            paths,
            ["oa", "oa2", "ll"],
            openai(oa),
            openai(second, "oa2"),
            ollama(ll),
        )
        oa.reply("Sure! The change looks fine to me.")
        oa.reply('{"verdict": "fine"}')
        second.reply(verdict("disagree", [("app.py", 14, "Off by one.")]))
        ll.reply("{not json")
        ll.reply(verdict("agree"))
        is_error, text = await call(await connect(), diff=DIFF)
    assert not is_error, text
    by = lines(text)
    assert by["openai"].startswith("openai via oa2 (fake-model): disagree")
    assert by["alibaba"].startswith("alibaba via ll (qwen2.5:3b): agree")  # fixed on the retry
    assert len(oa.requests) == 2 and len(ll.requests) == 2
    # the correction names what was wrong
    assert "is not valid JSON" in ll.requests[-1].body["messages"][-1]["content"]
    assert ("oa", "cross_check", "invalid_output") in ledger(paths)


async def test_malformed_answers_leave_the_family_missing_with_the_reason(
    paths: Paths, oa: FakeOpenAI, gg: FakeGemini, ll: FakeOllama, connect: Any
):
    configure(paths, ["oa", "gg", "ll"], openai(oa), gemini(gg), ollama(ll))
    oa.reply(verdict("agree"))
    gg.reply(verdict("agree"))
    ll.reply("no")
    ll.reply(verdict("maybe"))
    is_error, text = await call(await connect(), diff=DIFF)
    assert not is_error, text
    missing = lines(text)["alibaba"]
    assert missing.startswith("alibaba: no answer. ll: the answer failed the output contract")
    assert "2 of 3 families answered" in text


async def test_privacy_gate_skips_an_untrusted_provider_and_redacts_for_a_trusted_one(
    paths: Paths, oa: FakeOpenAI, gg: FakeGemini, ll: FakeOllama, connect: Any
):
    configure(
        paths,
        ["gg", "oa", "ll"],
        gemini(gg, privacy='{ secret = "block" }'),
        openai(oa, trust="trusted"),
        ollama(ll),
    )
    oa.reply(verdict("disagree", [("app.py", 3, "Hard-coded token [[SECRET_1]].")]))
    ll.reply(verdict("disagree", [("app.py", 3, "Hard-coded token.")]))
    diff = DIFF + f'+TOKEN = "{SECRET}"\n'
    is_error, text = await call(
        await connect(), diff=diff, families=["google", "openai", "alibaba"]
    )
    assert not is_error, text
    assert gg.calls == []  # the untrusted provider never saw the packet
    assert "google: no answer. gg (untrusted): packet holds data this provider's privacy" in text
    assert SECRET not in sent(oa) and "[[SECRET_1]]" in sent(oa)  # trusted: redacted
    assert SECRET in sent(ll)  # local: whole
    assert f"Hard-coded token {SECRET}" in lines(text)["openai"]  # restored for Claude
    assert SECRET.encode() not in paths.ledger_file.read_bytes()


async def test_fewer_than_two_families_is_an_actionable_error(
    paths: Paths, oa: FakeOpenAI, gg: FakeGemini, connect: Any, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("GG_KEY")
    configure(paths, ["oa", "gg"], openai(oa), gemini(gg))
    is_error, text = await call(await connect(), diff=DIFF)
    assert is_error
    assert "cross_check needs two model families that can be asked; 1 can:" in text
    assert "- openai: ready (oa)" in text
    assert "- google: gg: no API key. Fix: run 'offload-mcp keys set gg' or set GG_KEY." in text
    assert "offload-mcp keys set NAME" in text
    assert oa.requests == []  # nothing was sent before the check


async def test_only_one_answer_is_returned_with_a_loud_note(
    paths: Paths, oa: FakeOpenAI, connect: Any
):
    down = provider("mt", closed_port_url(), "llama-3.3-70b")
    configure(paths, ["oa", "mt"], openai(oa), down)
    oa.reply(verdict("agree"))
    is_error, text = await call(await connect(), diff=DIFF)
    assert not is_error, text
    first, *_ = text.splitlines()
    assert first.startswith("ONLY ONE FAMILY ANSWERED (openai; no answer from meta)")
    assert lines(text)["meta"].startswith("meta: no answer. mt: ")
    assert "Agreement" not in text and "Disagreement" not in text


async def test_a_failed_family_frees_its_place_for_the_next(
    paths: Paths, oa: FakeOpenAI, ll: FakeOllama, mt: FakeOpenAI, connect: Any
):
    down = provider("gone", closed_port_url(), "deepseek-chat")
    configure(paths, ["oa", "gone", "ll", "mt"], openai(oa), down, ollama(ll), meta(mt))
    for fake in (oa, mt):
        fake.reply(verdict("agree"))
    ll.reply(verdict("uncertain"))
    progress: list[str] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(message or "")

    client = await connect()
    result = await client.call_tool(
        "cross_check", {"question": QUESTION, "diff": DIFF}, progress_callback=on_progress
    )
    text = result.content[0].text  # type: ignore[union-attr]
    assert not result.is_error, text
    by = lines(text)
    assert "deepseek" in by and "openai" in by and "alibaba" in by and "meta" in by
    assert "3 of 4 families answered" in text
    assert "Disagreement: openai agree, alibaba uncertain, meta agree." in text
    assert "openai: agree (oa)" in progress and "meta: agree (mt)" in progress
    assert any(m.startswith("deepseek: no answer (gone: ") for m in progress), progress
    assert "alibaba: sending to ll" in progress


async def test_bad_arguments_are_actionable(
    paths: Paths, oa: FakeOpenAI, gg: FakeGemini, connect: Any, tmp_path: Path
):
    configure(paths, ["oa", "gg"], openai(oa), gemini(gg))
    client = await connect()
    cases = [
        ({"question": "   "}, "question: must not be blank."),
        ({"families": ["openai"]}, "families: name at least two different families"),
        ({"families": ["openai", "OpenAI"]}, "families: name at least two different"),
        ({"families": ["openai", "mistral"]}, "no reviewing provider of family 'mistral'"),
        ({"files": ["../outside.py"]}, "outside"),
        ({"files": ["missing.py"]}, "missing.py"),
        ({"timeout_s": -1}, "timeout_s: must be between 0 and 1800."),
        ({"diff": "x" * 1_000_001}, "pass the changed files as `files`"),
    ]
    for arguments, expected in cases:
        is_error, text = await call(client, **arguments)
        assert is_error and expected in text, (arguments, text)
    assert oa.requests == [] and gg.calls == []


async def test_files_travel_in_the_packet(
    paths: Paths, oa: FakeOpenAI, ll: FakeOllama, connect: Any, tmp_path: Path
):
    (tmp_path / "app.py").write_text("def mean(xs):\n    return sum(xs) / len(xs)\n")
    configure(paths, ["oa", "ll"], openai(oa), ollama(ll))
    oa.reply(verdict("disagree", [("app.py", 2, "Divides by zero on an empty list.")]))
    ll.reply(verdict("disagree", [("app.py", 2, "ZeroDivisionError for [].")]))
    is_error, text = await call(await connect(), question="mean() never raises.", files=["app.py"])
    assert not is_error, text
    assert "## File: app.py" in sent(oa) and "return sum(xs) / len(xs)" in sent(ll)
    assert "Agreement: both say disagree. Found by both: app.py:2." in text


# --- families and verdicts, without a server ----------------------------------------------


@pytest.mark.parametrize(
    ("model", "family"),
    [
        ("gpt-4o-mini", "openai"),
        ("o3-mini", "openai"),
        ("openai/gpt-oss-120b", "openai"),
        ("gemini-2.5-flash", "google"),
        ("google/gemma-3-27b-it", "google"),
        ("meta-llama/llama-3.3-70b-instruct:free", "meta"),
        ("@cf/meta/llama-3.3-70b-instruct-fp8-fast", "meta"),
        ("qwen2.5:3b", "alibaba"),
        ("hf.co/bartowski/Qwen2.5-7B-Instruct-GGUF", "alibaba"),
        ("z-ai/glm-4.6", "zhipu"),
        ("moonshotai/kimi-k2", "moonshot"),
        ("mistralai/codestral-2508", "mistral"),
        ("deepseek-ai/DeepSeek-V3", "deepseek"),
        ("anthropic/claude-haiku-4.5", ANTHROPIC),
        ("local-model", None),
        ("olmo-2", None),
        ("metallama", None),
    ],
)
def test_model_family(model: str, family: str | None):
    assert model_family(model) == family


def test_preset_families_and_order():
    settings = build_settings({})
    families = {f.name: [p.name for p in f.providers] for f in reviewer_families(settings)}
    assert list(families)[:2] == ["openai", "google"]
    assert families["openai"][:2] == ["codex", "cerebras"]
    assert "gemini-cli" not in families["google"]  # grounded CLI appends sources: no JSON
    assert "embedded" not in str(families)
    chosen = [f.name for f in choose(reviewer_families(settings), [], chained=False)]
    assert ANTHROPIC in families and ANTHROPIC not in chosen
    named = choose(reviewer_families(settings), ["anthropic", "google"], chained=False)
    assert [f.name for f in named] == ["anthropic", "google"]


def test_family_field_and_chain_decide():
    user = {
        "providers": {
            "box": {"base_url": "http://127.0.0.1:8080/v1", "model": "local-model"},
            "tagged": {
                "base_url": "http://127.0.0.1:8081/v1",
                "model": "local-model",
                "family": "deepseek",
            },
        },
        "chains": {"cross_check": ["tagged", "box", "openrouter-haiku", "embedded"]},
    }
    settings = build_settings(user)
    assert family_of(settings.providers["box"]) is None
    families = reviewer_families(settings)
    assert [(f.name, [p.name for p in f.providers]) for f in families] == [
        ("deepseek", ["tagged"]),
        (ANTHROPIC, ["openrouter-haiku"]),  # the user put it in their chain
    ]
    assert [f.name for f in choose(families, [], chained=True)] == ["deepseek", ANTHROPIC]
    with pytest.raises(InvalidRequest, match="configured: deepseek, anthropic"):
        choose(families, ["deepseek", "openai"], chained=True)


def test_confidence_and_paths_are_normalised():
    data = json.loads(verdict("agree", [(" ./a.py ", -4, "x\n  y")], confidence=85))
    parsed = Verdict.from_data(data)
    assert parsed.confidence == 0.85
    assert parsed.problems == (Problem("a.py", 0, "x y"),)
    assert Verdict.from_data(json.loads(verdict(confidence=-2))).confidence == 0.0


def test_three_way_agreement_names_who_found_what():
    def v(kind: str, *places: tuple[str, int]) -> Verdict:
        return Verdict(kind, tuple(Problem(f, n, "bug") for f, n in places), 0.9, "")

    verdicts = {
        "openai": v("disagree", ("a.py", 10), ("b.py", 5), ("", 0)),
        "google": v("disagree", ("a.py", 12), ("b.py", 40)),
        "meta": v("disagree", ("lib/a.py", 9), ("b.py", 6)),
    }
    found = spots(verdicts)
    assert [(s.where, s.families) for s in found] == [
        ("a.py:10", ("openai", "google", "meta")),
        ("b.py:5", ("openai", "meta")),
        ("(no file)", ("openai",)),
        ("b.py:40", ("google",)),
    ]
    answers = [Answer(name, verdict=verdict) for name, verdict in verdicts.items()]
    assert agreement(answers) == (
        "Agreement: all 3 say disagree. Found by all: a.py:10. Only openai+meta: b.py:5. "
        "Only openai: (no file). Only google: b.py:40."
    )
