"""Output contracts: what to ask the backend for, and whether its answer satisfies the packet.

Labels travel as a one-field JSON object with an enum, so every structured-output dialect can
enforce them; a JSON schema whose root is not an object is wrapped the same way, because
OpenAI-style `json_schema` response formats require an object at the root.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from offload_mcp.errors import InvalidRequest
from offload_mcp.packets import OutputContract

_FENCE = re.compile(r"\A\s*```(?:json|JSON)?\s*\n(.*?)\n\s*```\s*\Z", re.DOTALL)


@dataclass(frozen=True)
class Checked:
    """A valid answer: the text Claude will read and the parsed value (None for free text)."""

    text: str
    data: Any


def make_contract(
    labels: list[str] | None = None, schema: dict[str, Any] | None = None
) -> OutputContract:
    """Build and check a contract from tool arguments; bad arguments raise `InvalidRequest`."""
    if labels is not None and schema is not None:
        raise InvalidRequest("give either labels or schema, not both.")
    if labels is not None:
        cleaned = tuple(dict.fromkeys(label.strip() for label in labels if label.strip()))
        if len(cleaned) < 2:
            raise InvalidRequest("labels: give at least two distinct, non-empty labels.")
        return OutputContract(kind="labels", labels=cleaned)
    if schema is not None:
        check_schema(schema)
        return OutputContract(kind="json", schema=schema)
    return OutputContract()


def check_schema(schema: dict[str, Any]) -> None:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    if not isinstance(schema, dict) or not schema:
        raise InvalidRequest("schema: must be a non-empty JSON Schema object.")
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.path) or "(root)"
        raise InvalidRequest(f"schema: not a valid JSON Schema at {where}: {exc.message}") from None


def _wraps(contract: OutputContract) -> bool:
    return contract.kind == "labels" or (
        contract.schema is not None and contract.schema.get("type") != "object"
    )


def request_schema(contract: OutputContract) -> dict[str, Any] | None:
    """The JSON schema sent to the provider, or None for free text."""
    if contract.kind == "labels":
        inner: dict[str, Any] = {"type": "string", "enum": list(contract.labels)}
        return _object("label", inner)
    if contract.kind == "json" and contract.schema is not None:
        return _object("result", contract.schema) if _wraps(contract) else contract.schema
    return None


def _object(field: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {field: schema},
        "required": [field],
        "additionalProperties": False,
    }


def output_rules(contract: OutputContract) -> str:
    """The packet's output section: the same rules whether or not the provider enforces them."""
    if contract.kind == "labels":
        labels = ", ".join(json.dumps(label) for label in contract.labels)
        return f'Reply with only a JSON object {{"label": L}} where L is exactly one of: {labels}.'
    schema = request_schema(contract)
    if schema is not None:
        return (
            "Reply with only one JSON value (no prose, no code fence) that validates against "
            f"this JSON Schema:\n{json.dumps(schema, separators=(',', ':'))}"
        )
    return "Reply in plain text with just the answer."


def check(contract: OutputContract, answer: str) -> Checked:
    """Validate an answer; raise `ValueError` with a reason the backend can fix on retry."""
    if contract.kind == "text":
        return Checked(answer.strip(), None)
    if contract.kind == "labels":
        return _check_label(contract, answer)
    value = _parse_json(answer)
    schema = request_schema(contract)
    assert schema is not None
    _validate(value, schema)
    if _wraps(contract):
        value = value["result"]
    return Checked(json.dumps(value, ensure_ascii=False, separators=(",", ":")), value)


def _check_label(contract: OutputContract, answer: str) -> Checked:
    try:
        value = _parse_json(answer)
        label = value.get("label") if isinstance(value, dict) else value
    except ValueError:
        label = answer.strip().strip(".\"'")  # a bare label from a provider without JSON mode
    by_folded = {known.casefold(): known for known in contract.labels}
    if isinstance(label, str) and label.strip().casefold() in by_folded:
        chosen = by_folded[label.strip().casefold()]
        return Checked(chosen, chosen)
    raise ValueError(f"{label!r} is not one of the allowed labels {list(contract.labels)}")


def _parse_json(answer: str) -> Any:
    text = answer.strip()
    fenced = _FENCE.match(text)
    if fenced:
        text = fenced.group(1)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"the answer is not valid JSON ({exc.msg} at char {exc.pos})") from None


def _validate(value: Any, schema: dict[str, Any]) -> None:
    from jsonschema import Draft202012Validator

    error = next(iter(Draft202012Validator(schema).iter_errors(value)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise ValueError(f"the JSON does not match the schema at {where}: {error.message}")
