"""The docs say what the code does: the diagram is the map's, CI runs the README's test command, the README's spec
table names every spec field."""

import pathlib
import re

from workload_operator.lifecycle import mermaid_diagram
from workload_operator.lifecycle.spec import WorkloadSpec

ROOT = pathlib.Path(__file__).parents[2]


def mermaid_blocks(text: str) -> list[str]:
    return [block.strip() for block in re.findall(r"```mermaid\n(.*?)```", text, flags=re.S)]


def test_the_diagrams_are_the_transition_map():
    for page in ("README.md", "docs/lifecycle.md"):
        assert mermaid_diagram() in mermaid_blocks((ROOT / page).read_text()), page


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci_lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if "pytest" in line and not line.startswith("#")]
    assert len(ci_lines) == 1
    assert f"```sh\n{ci_lines[0]}\n```" in readme


def spec_table_fields(text: str) -> set[str]:
    """The field names in the first column of the README's spec table (``| field | default | meaning |``)."""
    table = text.split("| field | default | meaning |", 1)[1].split("\n\n", 1)[0]
    return {name for row in table.splitlines()[2:] for name in re.findall(r"`(\w+)`", row.split("|")[1])}


def test_the_readme_spec_table_lists_every_spec_field():
    fields = {field.alias or name for name, field in WorkloadSpec.model_fields.items()}
    assert spec_table_fields((ROOT / "README.md").read_text()) == fields
