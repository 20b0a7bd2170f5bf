"""Every case of the bad-input corpus is refused by the spec model, naming the field."""

import pytest

from tests.harness import CORPUS
from workload_operator.lifecycle import InvalidSpec, parse_spec


def test_the_corpus_is_large_and_names_are_unique():
    assert len(CORPUS) >= 30
    assert len({case["name"] for case in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("case", CORPUS, ids=[case["name"] for case in CORPUS])
def test_the_spec_model_refuses_it_naming_the_field(case):
    with pytest.raises(InvalidSpec) as refused:
        parse_spec(case["spec"])
    assert case["field"] in str(refused.value)
