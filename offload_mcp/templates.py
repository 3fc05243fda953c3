"""Packet templates: `prompts/*.md` files with `$name` placeholders, shipped in the wheel.

A template's first line may be an HTML comment; it is the description shown for the MCP prompt
and is not part of the rendered text.
"""

from __future__ import annotations

import functools
import re
import string
from dataclasses import dataclass
from importlib import resources

from offload_mcp.errors import InvalidRequest

_DESCRIPTION = re.compile(r"\A<!--\s*(.*?)\s*-->\n?", re.DOTALL)


@dataclass(frozen=True)
class Template:
    name: str
    description: str
    body: str

    @property
    def variables(self) -> list[str]:
        names = [
            match.group("named") or match.group("braced")
            for match in string.Template.pattern.finditer(self.body)
        ]
        return list(dict.fromkeys(name for name in names if name))

    def render(self, **values: str) -> str:
        missing = [name for name in self.variables if name not in values]
        if missing:
            raise InvalidRequest(f"template {self.name!r} needs: {', '.join(missing)}")
        return string.Template(self.body).substitute(values)


@functools.cache
def load_templates() -> dict[str, Template]:
    folder = resources.files("offload_mcp").joinpath("prompts")
    templates: dict[str, Template] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".md"):
            continue
        text = entry.read_text("utf-8")
        match = _DESCRIPTION.match(text)
        name = entry.name.removesuffix(".md")
        templates[name] = Template(
            name=name,
            description=match.group(1) if match else "",
            body=text[match.end() :] if match else text,
        )
    return templates


def get_template(name: str) -> Template:
    templates = load_templates()
    if name not in templates:
        raise InvalidRequest(f"unknown template {name!r}; known: {', '.join(templates)}")
    return templates[name]
