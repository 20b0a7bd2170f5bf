"""Evaluate the CRD's CEL rules, read from the generated YAML, with the CEL project's own runtime."""

import pathlib
from typing import Any

import pytest
import yaml
from cel_expr_python import cel

CRD_PATH = pathlib.Path(__file__).parents[2] / "crds" / "workloads.yaml"


class Rule:
    """One ``x-kubernetes-validations`` entry, compiled; evaluates like the API server does."""

    _env = cel.NewEnv(variables={"self": cel.Type.DYN, "oldSelf": cel.Type.DYN})

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw
        self._rule = self._env.compile(raw["rule"])
        self._message = self._env.compile(raw["messageExpression"]) if "messageExpression" in raw else None

    @staticmethod
    def _value(result: Any) -> Any:
        if result.type().name() == "error":
            raise AssertionError(f"CEL evaluation error: {result.value()}")
        return result.plain_value()

    def allows(self, new: dict[str, Any], old: dict[str, Any] | None = None) -> bool:
        data = {"self": new} if old is None else {"self": new, "oldSelf": old}
        allowed = self._value(self._rule.eval(data=data))
        assert isinstance(allowed, bool)
        return allowed

    def message(self, new: dict[str, Any], old: dict[str, Any] | None = None) -> str:
        if self._message is None:
            return self.raw["message"]
        data = {"self": new} if old is None else {"self": new, "oldSelf": old}
        return self._value(self._message.eval(data=data))


@pytest.fixture(scope="session")
def crd_schema() -> dict[str, Any]:
    crd = yaml.safe_load(CRD_PATH.read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


@pytest.fixture(scope="session")
def root_rules(crd_schema) -> dict[str, Rule]:
    """The root rules, keyed by the field each one guards."""
    return {raw["fieldPath"]: Rule(raw) for raw in crd_schema["x-kubernetes-validations"]}


@pytest.fixture(scope="session")
def spec_rules(crd_schema) -> list[Rule]:
    return [Rule(raw) for raw in crd_schema["properties"]["spec"]["x-kubernetes-validations"]]
