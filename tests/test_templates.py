import pytest

from offload_mcp.errors import InvalidRequest
from offload_mcp.templates import get_template, load_templates


def test_every_template_renders_with_its_variables():
    templates = load_templates()
    assert {"offload", "system"} <= set(templates)
    for template in templates.values():
        values = {name: f"<{name}>" for name in template.variables}
        rendered = template.render(**values)
        for value in values.values():
            assert value in rendered
        assert "$" not in rendered.replace("$$", "")
        assert not rendered.lstrip().startswith("<!--"), "the description must not be sent"
        assert template.description


def test_missing_variables_are_named():
    with pytest.raises(InvalidRequest, match="needs: task, inputs, output_rules"):
        get_template("offload").render()


def test_values_with_dollar_signs_are_inserted_verbatim():
    text = get_template("offload").render(task="cost $5 ${x}", inputs="", output_rules="r")
    assert "cost $5 ${x}" in text


def test_unknown_template():
    with pytest.raises(InvalidRequest, match="unknown template"):
        get_template("nope")
