"""The verdict every reviewer answers in, and where two or more verdicts part ways.

The schema keeps to what every structured-output dialect enforces (OpenAI strict mode, Gemini,
Ollama grammars, Codex `--output-schema`): all fields required, no unions, no numeric bounds.
`line` is 0 when a problem has no line; confidence is brought into 0..1 here instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from offload_mcp.packets import OutputContract

VERDICTS = ("agree", "disagree", "uncertain")
#: two reports of the same file this many lines apart are taken as the same problem
LINE_SLACK = 3

SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "verdict": {"type": "string", "enum": list(VERDICTS)},
        "problems": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "file": {"type": "string"},
                    "line": {"type": "integer"},
                    "issue": {"type": "string"},
                },
                "required": ["file", "line", "issue"],
                "additionalProperties": False,
            },
        },
        "confidence": {"type": "number"},
        "summary": {"type": "string"},
    },
    "required": ["verdict", "problems", "confidence", "summary"],
    "additionalProperties": False,
}
CONTRACT = OutputContract(kind="json", schema=SCHEMA)


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    issue: str

    @property
    def where(self) -> str:
        if not self.file:
            return "(no file)"
        return f"{self.file}:{self.line}" if self.line > 0 else self.file


@dataclass(frozen=True)
class Verdict:
    verdict: str
    problems: tuple[Problem, ...]
    confidence: float
    summary: str

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> Verdict:
        """From an answer the contract already checked against `SCHEMA`."""
        problems = tuple(
            Problem(_path(p["file"]), max(int(p["line"]), 0), " ".join(p["issue"].split()))
            for p in data["problems"]
        )
        return cls(data["verdict"], problems, _unit(float(data["confidence"])), data["summary"])


def _path(file: str) -> str:
    return file.strip().removeprefix("./")


def _unit(confidence: float) -> float:
    """Some models answer 85 for 0.85."""
    if 1 < confidence <= 100:
        confidence /= 100
    return min(max(confidence, 0.0), 1.0)


@dataclass(frozen=True)
class Spot:
    """One place at least one family found a problem, and which families found it there."""

    where: str
    families: tuple[str, ...]


def spots(verdicts: Mapping[str, Verdict]) -> list[Spot]:
    """Problems from every family grouped by place (same file, lines within `LINE_SLACK`).

    A problem joins the nearest place another family reported (two problems of one family
    stay apart however close); problems with no file cannot be matched by place.
    """
    found: list[tuple[Problem, list[str]]] = []
    for family, verdict in verdicts.items():
        for problem in verdict.problems:
            near = [
                (abs(p.line - problem.line), families)
                for p, families in found
                if family not in families and _same_place(p, problem)
            ]
            if near:
                min(near, key=lambda pair: pair[0])[1].append(family)
            else:
                found.append((problem, [family]))
    return [Spot(problem.where, tuple(families)) for problem, families in found]


def _same_place(a: Problem, b: Problem) -> bool:
    if not a.file or not b.file or not _same_file(a.file, b.file):
        return False
    if a.line == 0 or b.line == 0:
        return a.line == b.line
    return abs(a.line - b.line) <= LINE_SLACK


def _same_file(a: str, b: str) -> bool:
    """`src/app.py` and `app.py` are the same file when one is a path suffix of the other."""
    short, long = sorted((a, b), key=len)
    return long == short or long.endswith("/" + short)
