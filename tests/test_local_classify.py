"""`local_classify` end to end in process: the real embedded model, files, the ledger, and the
local-only rule (a cloud provider in the chain never sees the items unless config opts in)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from offload_mcp import classify as classify_module
from offload_mcp.backends.embedded import EmbeddingModel
from offload_mcp.classify import make_labels
from offload_mcp.config import Paths, build_settings
from offload_mcp.dispatch import Dispatcher
from offload_mcp.errors import InvalidRequest
from offload_mcp.server import build_server
from tests.fake_openai import FakeOpenAI

pytestmark = pytest.mark.anyio

LABELS = {
    "billing": "payments, invoices, refunds, being charged",
    "bug": "the product is broken, crashes or shows an error",
    "account": "logging in, passwords, profile and access",
}
ITEMS = [
    "I was charged twice for my subscription this month",
    "The app crashes every time I press export",
    "I forgot my password and the reset link never arrives",
]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    return root


@pytest.fixture
def cloud() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


def configure(paths: Paths, text: str) -> None:
    paths.config_file.write_text(text)


@pytest.fixture
async def client(paths: Paths, project: Path) -> AsyncIterator[Client]:
    async with Client(build_server(paths=paths, cwd=project)) as connected:
        yield connected


async def call(client: Client, tool: str = "local_classify", **arguments: Any) -> tuple[bool, str]:
    result = await client.call_tool(tool, arguments)
    assert result.structured_content is None
    return result.is_error, result.content[0].text  # type: ignore[union-attr]


def rows(paths: Paths) -> list[tuple[Any, ...]]:
    with sqlite3.connect(paths.ledger_file) as conn:
        return conn.execute(
            "SELECT tool, provider, outcome, input_tokens, output_tokens, usd FROM calls"
        ).fetchall()


async def test_classifies_in_order_and_records_one_ledger_row(client: Client, paths: Paths):
    is_error, text = await call(client, labels=LABELS, items=ITEMS)
    assert not is_error, text
    body, footer = text.split("\n\n")
    lines = body.splitlines()
    assert [line.split()[1] for line in lines] == ["billing", "bug", "account"]
    assert all(0 < float(line.split()[2]) <= 1 for line in lines)
    assert footer.startswith("[local_classify: embedded (all-MiniLM-L6-v2-int8), 3 items")
    assert "$0; account 1, billing 1, bug 1]" in footer
    [(tool, provider, outcome, tokens_in, tokens_out, usd)] = rows(paths)
    assert (tool, provider, outcome, tokens_out, usd) == ("local_classify", "embedded", "ok", 0, 0)
    assert tokens_in > 20


async def test_off_topic_item_is_unsure(client: Client):
    is_error, text = await call(client, labels=LABELS, items=["Banana bread needs ripe bananas."])
    assert not is_error
    assert text.startswith("1. unsure (")


async def test_examples_and_multi_label(client: Client):
    item = "The payment page crashes with an error when I try to pay my invoice"
    is_error, text = await call(client, labels=LABELS, multi=True, items=[item])
    assert not is_error
    assert text.startswith("1. billing+bug ")
    examples = {"account": ["My profile page shows someone else's name"]}
    is_error, text = await call(client, labels=LABELS, examples=examples, items=ITEMS)
    assert not is_error and text.splitlines()[2].split()[1] == "account"


async def test_file_lines_and_jsonl_field(client: Client, project: Path):
    (project / "tickets.txt").write_text("\n".join(ITEMS) + "\n\n")
    is_error, text = await call(client, labels=LABELS, file="tickets.txt")
    assert not is_error
    assert text.count("\n") >= 3 and "3 items" in text
    jsonl = "\n".join(json.dumps({"id": i, "body": item}) for i, item in enumerate(ITEMS))
    (project / "tickets.jsonl").write_text(jsonl)
    is_error, text = await call(client, labels=LABELS, file="tickets.jsonl", field="body")
    assert not is_error, text
    assert text.splitlines()[1].split()[1] == "bug"
    is_error, text = await call(client, labels=LABELS, file="tickets.jsonl", field="nope")
    assert is_error and "line 1 has no string field 'nope'" in text


async def test_big_batch_goes_to_a_file_with_counts(client: Client, paths: Paths):
    items = ITEMS * 20
    is_error, text = await call(client, labels=LABELS, items=items)
    assert not is_error
    head = text.splitlines()[0]
    assert head.startswith("60 items; one JSON line per item in ")
    path = Path(head.rsplit(" in ", 1)[1])
    assert path.parent == paths.data_dir / "results"
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["i"] for line in lines] == list(range(1, 61))
    assert lines[1]["label"] == "bug" and lines[1]["text"] == ITEMS[1]
    assert "billing 20, bug 20" in text


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"labels": ["only"], "items": ["x"]}, "give 2 to 50 distinct labels"),
        ({"labels": ["a", "unsure"], "items": ["x"]}, "reserved"),
        ({"labels": ["a", "b"], "items": ["x"], "examples": {"c": ["y"]}}, "not one of the labels"),
        ({"labels": ["a", "b"]}, "nothing to classify"),
        ({"labels": ["a", "b"], "items": ["x"], "file": "f.txt"}, "either items or file"),
        ({"labels": ["a", "b"], "file": "../outside.txt"}, "outside the allowed roots"),
    ],
)
async def test_bad_arguments_are_clear(client: Client, arguments: dict[str, Any], message: str):
    is_error, text = await call(client, **arguments)
    assert is_error and message in text


async def test_cloud_provider_in_chain_is_skipped(paths: Paths, project: Path, cloud: FakeOpenAI):
    configure(
        paths,
        f"""
[providers.cloudy]
base_url = "{cloud.url}"
model = "m"
trust = "trusted"
needs_key = false

[chains]
local_classify = ["cloudy", "embedded"]
""",
    )
    async with Client(build_server(paths=paths, cwd=project)) as client:
        is_error, text = await call(client, labels=LABELS, items=ITEMS[:1])
        assert not is_error and "[local_classify: embedded" in text
        is_error, text = await call(client, "local_extract", schema={"type": "object"}, text="x")
        assert is_error and "needs a generative local model" in text
    assert cloud.requests == []


async def test_cloud_fallback_only_when_config_opts_in(
    paths: Paths, project: Path, cloud: FakeOpenAI
):
    configure(
        paths,
        f"""
[local]
allow_cloud = true

[providers.cloudy]
base_url = "{cloud.url}"
model = "m"
trust = "trusted"
needs_key = false

[chains]
local_classify = ["cloudy"]
""",
    )
    cloud.reply('{"label": "bug"}')
    async with Client(build_server(paths=paths, cwd=project)) as client:
        is_error, text = await call(client, labels=LABELS, items=ITEMS[1:2])
    assert not is_error, text
    assert text.startswith("1. bug\n") and "[local_classify: cloudy" in text
    sent = cloud.requests[-1].body
    enum = sent["response_format"]["json_schema"]["schema"]["properties"]["label"]["enum"]
    assert enum == ["billing", "bug", "account", "unsure"]
    assert "logging in, passwords" in sent["messages"][1]["content"]


async def test_generative_local_classifier_first_in_chain(
    paths: Paths, project: Path, cloud: FakeOpenAI
):
    local_url = cloud.url  # loopback: a llama.cpp-style server gets `local` trust
    configure(
        paths,
        f"""
[providers.llamacpp]
base_url = "{local_url}"

[chains]
local_classify = ["llamacpp", "embedded"]
""",
    )
    cloud.reply('{"label": "unsure"}')
    cloud.reply('{"label": "unsure"}')
    async with Client(build_server(paths=paths, cwd=project)) as client:
        is_error, text = await call(client, labels=LABELS, items=["a", "b"])
        assert not is_error, text
        assert text.startswith("1. unsure\n2. unsure") and "[local_classify: llamacpp" in text
        cloud.fail(500)
        cloud.fail(500)
        is_error, text = await call(client, labels=LABELS, items=ITEMS[:1])
    assert not is_error and "[local_classify: embedded" in text, text
    assert "1. billing" in text


async def test_extract_without_a_local_model_says_what_to_start(paths: Paths, project: Path):
    async with Client(build_server(paths=paths, cwd=project)) as client:
        is_error, text = await call(client, "local_summarize", text="Some long text.")
    assert is_error and "needs a generative local model" in text
    assert "ollama serve" in text and "ollama pull qwen2.5:3b" in text


def test_label_specs():
    specs = make_labels({" a ": "first", "b": ""}, {"a": ["x", " "]})
    assert [s.texts() for s in specs] == [["a: first", "x"], ["b"]]
    with pytest.raises(InvalidRequest):
        make_labels(["a", "A", ""])


def test_idle_model_unloads():
    model = EmbeddingModel(idle_s=0.3)
    embedded = model.embed(["hello world", ""])
    assert embedded.vectors.shape == (2, 384) and model.loaded
    assert abs(float((embedded.vectors[0] ** 2).sum()) - 1) < 1e-4
    deadline = time.monotonic() + 5
    while model.loaded and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not model.loaded
    model.embed(["again"])  # loads again on demand
    model.unload()
    assert not model.loaded


def test_server_start_imports_no_model_runtime():
    code = (
        "import sys; from offload_mcp.server import build_server; build_server(); "
        "bad = {'onnxruntime', 'tokenizers', 'numpy', 'ollama'} & set(sys.modules); "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


async def test_long_batches_run_in_chunks_with_progress(
    paths: Paths, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(classify_module, "EMBED_CHUNK", 25)
    dispatcher = Dispatcher.for_paths(build_settings({}), paths)
    said: list[str] = []

    async def progress(message: str) -> None:
        said.append(message)

    outcome = await classify_module.classify(
        dispatcher, ITEMS * 20, make_labels(LABELS), progress=progress
    )
    await dispatcher.aclose()
    assert said == ["25/60 classified", "50/60 classified", "60/60 classified"]
    assert [v.label for v in outcome.verdicts[:3]] == ["billing", "bug", "account"]
    assert len(rows(paths)) == 1


EVAL = Path(__file__).parent / "eval"


def eval_sets(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]


def test_eval_sets_are_varied_and_consistent():
    dev, held_out = eval_sets(EVAL), eval_sets(EVAL / "heldout")
    for sets in (dev, held_out):
        assert len(sets) >= 4 and sum(len(s["items"]) for s in sets) >= 150
        for data in sets:
            names = set(data["labels"])
            assert names == set(data["examples"]) == set(data["keywords"]), data["name"]
            gold = [item["label"] for item in data["items"]]
            assert all(gold.count(name) >= 4 for name in names), data["name"]
    texts = [item["text"] for data in dev + held_out for item in data["items"]]
    assert len(texts) == len(set(texts)), "an item is repeated (or leaks into the held-out sets)"


def test_margin_decides_unsure():
    import numpy as np

    specs = make_labels(["a", "b", "c"])
    gap = classify_module.MARGIN
    similarity = np.array(
        [[0.5, 0.5 - gap - 0.01, 0.1], [0.5, 0.5 - gap + 0.01, 0.1], [0.1, 0.05, 0.0]],
        dtype=np.float32,
    )
    verdicts = classify_module.decide(similarity, specs)
    assert [v.label for v in verdicts] == ["a", "unsure", "unsure"]
    assert (verdicts[1].best, verdicts[1].runner_up) == ("a", "b")
    multi = classify_module.decide(similarity, specs, multi=True)
    assert multi[1].label == "a" and multi[1].labels == ("a",)  # the margin is not applied
    assert multi[2].label == "unsure" and multi[2].labels == ()  # nothing similar enough


def test_unsure_keeps_answered_items_right_on_the_dev_sets():
    """The quality bar of the issue, on the sets the margin was chosen on (the bench also
    scores the held-out sets): >= 90% of answered items right, and without `unsure` the
    model beats keyword rules written for the same labels."""
    model = EmbeddingModel(idle_s=0)
    right = answered = total = keyword_right = best_right = 0
    for data in eval_sets(EVAL):
        texts = [item["text"] for item in data["items"]]
        gold = [item["label"] for item in data["items"]]
        specs = make_labels(data["labels"], data["examples"])
        verdicts, _ = classify_module.classify_embedded(model.embed, texts, specs)
        answered += sum(v.label != "unsure" for v in verdicts)
        right += sum(v.label == g for v, g in zip(verdicts, gold, strict=True))
        best_right += sum(v.best == g for v, g in zip(verdicts, gold, strict=True))
        for text, label in zip(texts, gold, strict=True):
            hits = {k: sum(w in text.lower() for w in ws) for k, ws in data["keywords"].items()}
            keyword_right += max(hits.values()) > 0 and max(hits, key=hits.__getitem__) == label
        total += len(texts)
    assert right / answered >= 0.9 and answered / total >= 0.35
    assert best_right > keyword_right + 0.1 * total
