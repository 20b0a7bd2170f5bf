"""The docs say what the code does: the diagram is the map's, CI runs the README's test command."""

import pathlib
import re

from workload_operator.lifecycle import mermaid_diagram

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
