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


# kubectl's words for this project's resource that no other CRD takes: the short name, the full name, the category.
OURS = ("mlwl", "workloads.ml.lifecycle.dev", "workload.ml.lifecycle.dev", "ml")
# Kueue's workloads.kueue.x-k8s.io is kind Workload too, short name wl: kubectl resolves these to either.
AMBIGUOUS = ("wl", "workload", "workloads")
KUBECTL_VERBS = ("get", "describe", "delete", "patch", "wait", "edit", "label", "annotate", "explain")


def taught_kubectl_resources(text: str) -> list[tuple[str, str]]:
    """(command, resource argument) of every `kubectl VERB RESOURCE…` and `TYPE/NAME` in a page."""
    found = []
    for command in re.findall(r"kubectl [^;`\n]*", text):
        words = command.split()
        if len(words) > 1 and words[1] in KUBECTL_VERBS:
            found += [(command, word.split("/", 1)[0].split(".")[0] if "/" in word and "." not in word.split("/")[0]
                       else word) for word in words[2:] if not word.startswith("-")][:2]
    return found


def test_every_kubectl_command_the_docs_teach_names_the_resource_unambiguously():
    pages = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")), *sorted((ROOT / "examples").glob("*.yaml")),
             ROOT / "deploy" / "monitoring" / "prometheusrule.yaml", ROOT / "operator" / "workload_operator" / "dev.py"]
    taught = [(page.name, command, word) for page in pages for command, word in taught_kubectl_resources(page.read_text())]
    assert any(word == "mlwl" for _, _, word in taught)  # the test reads what it should
    wrong = [(page, command) for page, command, word in taught if word.split("/")[0] in AMBIGUOUS]
    assert wrong == [], wrong


def test_every_relative_link_and_image_in_the_docs_exists():
    """Links to the repository's files and the screenshots (tests/cluster/test_dashboard.py takes them)."""
    missing = []
    for page in [ROOT / "README.md", *(ROOT / "docs").glob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if not re.match(r"[a-z]+://", target) and not (page.parent / target).exists():
                missing.append(f"{page.name}: {target}")
    assert not missing
