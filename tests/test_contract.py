import json

import pytest

from offload_mcp import contract
from offload_mcp.errors import InvalidRequest
from offload_mcp.packets import OutputContract

LABELS = OutputContract(kind="labels", labels=("bug", "feature", "question"))
PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


def test_make_contract_defaults_to_text():
    assert contract.make_contract() == OutputContract()


@pytest.mark.parametrize(
    ("labels", "schema", "message"),
    [
        (["only"], None, "at least two"),
        (["a", " a ", ""], None, "at least two"),
        (["a", "b"], {"type": "object"}, "not both"),
        (None, {"type": "nonsense"}, "not a valid JSON Schema"),
        (None, {"properties": {"x": {"minLength": -1}}}, "properties/x/minLength"),
    ],
)
def test_make_contract_rejects_bad_arguments(labels, schema, message):
    with pytest.raises(InvalidRequest, match=message):
        contract.make_contract(labels, schema)


def test_labels_are_deduplicated_and_trimmed():
    made = contract.make_contract([" bug", "bug", "feature "], None)
    assert made.labels == ("bug", "feature")


@pytest.mark.parametrize(
    "answer",
    ['{"label": "bug"}', '```json\n{"label": "BUG"}\n```', "bug", "Bug.", '"bug"'],
)
def test_label_answers_accepted(answer):
    checked = contract.check(LABELS, answer)
    assert checked.text == checked.data == "bug"


@pytest.mark.parametrize("answer", ['{"label": "other"}', "I think it is a bug", '{"x": 1}'])
def test_label_answers_rejected(answer):
    with pytest.raises(ValueError, match="not one of the allowed labels"):
        contract.check(LABELS, answer)


def test_json_object_schema_sent_as_is_and_validated():
    made = OutputContract(kind="json", schema=PERSON)
    assert contract.request_schema(made) == PERSON
    checked = contract.check(made, '{"name": "Ada", "age": 36}')
    assert checked.data == {"name": "Ada", "age": 36}
    assert json.loads(checked.text) == checked.data
    with pytest.raises(ValueError, match="at age"):
        contract.check(made, '{"name": "Ada", "age": "old"}')
    with pytest.raises(ValueError, match="not valid JSON"):
        contract.check(made, "Ada is 36")


def test_non_object_schema_is_wrapped_and_unwrapped():
    made = OutputContract(kind="json", schema={"type": "array", "items": {"type": "integer"}})
    sent = contract.request_schema(made)
    assert sent is not None
    assert sent["type"] == "object" and sent["required"] == ["result"]
    assert contract.check(made, '{"result": [1, 2]}').data == [1, 2]


def test_output_rules_name_the_shape():
    assert "exactly one of" in contract.output_rules(LABELS)
    assert '"bug"' in contract.output_rules(LABELS)
    assert "JSON Schema" in contract.output_rules(OutputContract(kind="json", schema=PERSON))
    assert "plain text" in contract.output_rules(OutputContract())


def test_text_answers_are_trimmed():
    assert contract.check(OutputContract(), "  hi \n").text == "hi"
