"""The Kubernetes Jobs and Argo Workflows of the docs site work as written.

Every ```yaml block of the docs (``tests/support/readme.py``) is parsed. Each manifest has
what its kind requires; every container runs ``cdm-status`` with a command line that the
real parser accepts and that the command runs up to the point where it needs its settings
(none are given, so nothing is sent); every exit code a manifest acts on is one the command
line has (its ``EXIT_*`` constants, the table of docs/guides/cli.md), and none that the
Kubernetes guide's table says a retry cannot fix is retried.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Callable
from typing import Any

import pytest
import yaml

from cdm_status._redis_budget import check_url
from cdm_status.cli import _common, build_parser, main
from cdm_status.cli._budget import ENVIRONMENT as BUDGET_VARIABLE
from tests.support.readme import MANIFESTS, ROOT, Block

EXIT_CODES = {value for name, value in vars(_common).items() if name.startswith("EXIT_")}
"""Every exit code the command line has."""

RETRY_POLICIES = {"Always", "OnFailure", "OnError", "OnTransientError"}
TEMPLATE_TYPES = ("container", "script", "steps", "dag", "resource", "suspend", "containerSet")
EXIT_CODE_TEST = re.compile(r"exitCode\)?\s*(?:in\s*\[([^\]]*)\]|==\s*(\d+))")
"""What an Argo ``retryStrategy.expression`` says of the exit code: ``... in [3, 4]`` or
``... == 3`` (these retry the step on those codes)."""

Check = Callable[[dict[str, Any], str], argparse.Namespace]
"""Checks one container (its mapping, where it is): the parsed ``cdm-status`` arguments."""


def exit_code_table(page: str) -> dict[int, str]:
    """The exit-code table of PAGE (rows ``| CODE | ... |``): the rest of each row."""
    text = (ROOT / page).read_text(encoding="utf-8")
    return {int(code): rest for code, rest in re.findall(r"^\| (\d+) \|(.*)$", text, re.M)}


RETRY_TABLE = exit_code_table("docs/guides/kubernetes.md")
NOT_RETRIED = {code for code, row in RETRY_TABLE.items() if row.strip().startswith("no")}
"""The codes the Kubernetes guide says a retry cannot fix ("retry the pod? no")."""
VARIABLES = set(
    re.findall(r"`([A-Z][A-Z0-9_]{3,})`", (ROOT / "docs/configuration.md").read_text("utf-8"))
)
"""The environment variables the configuration page documents."""


def documents(block: Block) -> list[dict[str, Any]]:
    """The YAML documents of BLOCK, each a mapping."""
    found = [doc for doc in yaml.safe_load_all(block.code) if doc is not None]
    assert found, f"{block.name}: no YAML document"
    for doc in found:
        assert isinstance(doc, dict), f"{block.name}: not a mapping"
    return found


def kind(doc: dict[str, Any]) -> tuple[str, str]:
    return doc.get("apiVersion", ""), doc.get("kind", "")


def test_the_exit_code_tables_list_every_exit_code_of_the_command_line() -> None:
    assert set(exit_code_table("docs/guides/cli.md")) == EXIT_CODES
    assert set(RETRY_TABLE) == EXIT_CODES
    assert {_common.EXIT_JOB_FAILED, _common.EXIT_USAGE} <= NOT_RETRIED
    assert _common.EXIT_API not in NOT_RETRIED


def test_the_configuration_page_names_the_variables_the_command_line_reads() -> None:
    assert {BUDGET_VARIABLE, "HUAWEICLOUD_SDK_REGION", "CDM_CLUSTER_ID"} <= VARIABLES


def test_the_docs_have_the_manifests_this_file_checks() -> None:
    kinds = {kind(doc) for block in MANIFESTS for doc in documents(block)}
    assert kinds == {("batch/v1", "Job"), ("argoproj.io/v1alpha1", "Workflow")}


@pytest.fixture
def check_container(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Check:
    """Checks a container that runs ``cdm-status``, in an environment without any CDM
    setting: the command line then ends at its configuration, after every check of its
    arguments and before any request."""
    for name in list(os.environ):
        if name.startswith(("HUAWEICLOUD_SDK_", "CDM_")):
            monkeypatch.delenv(name)

    def check(container: dict[str, Any], where: str) -> argparse.Namespace:
        assert container.get("image"), f"{where}: no image"
        argv = [*container.get("command", []), *container.get("args", [])]
        assert all(isinstance(arg, str) for arg in argv), f"{where}: {argv}"
        line = f"{where}: {' '.join(argv)}"
        # `command: ["cdm-status"]`: the command itself, whatever the image's entrypoint.
        assert container.get("command", [])[:1] == ["cdm-status"], line
        try:
            args = build_parser().parse_args(argv[1:])
        except SystemExit:
            pytest.fail(f"{line}\n{capsys.readouterr().err}")
        code = main(argv[1:])
        said = capsys.readouterr().err
        assert code == _common.EXIT_USAGE, f"{line}\n{said}"
        assert said.startswith("cdm-status: configuration: "), f"{line}\n{said}"
        for variable in container.get("env", []):
            assert variable["name"] in VARIABLES, f"{where}: {variable['name']}"
            if variable["name"] == BUDGET_VARIABLE:
                check_url(variable["value"])
        return args

    return check


def check_job(job: dict[str, Any], where: str, check: Check) -> None:
    spec = job["spec"]
    pod = spec["template"]["spec"]
    assert pod.get("restartPolicy") in {"Never", "OnFailure"}, where
    containers = pod["containers"]
    assert containers, where
    names = [container["name"] for container in containers]
    commands = [check(container, f"{where} {container['name']}") for container in containers]
    deadline = spec.get("activeDeadlineSeconds")
    for args in commands:
        if deadline is not None and args.timeout is not None:
            assert deadline > args.timeout, f"{where}: cdm-status must time out first"
    rules = (spec.get("podFailurePolicy") or {}).get("rules", [])
    if rules:
        assert pod["restartPolicy"] == "Never", f"{where}: podFailurePolicy needs Never"
    for rule in rules:
        assert rule["action"] in {"FailJob", "FailIndex", "Ignore", "Count"}, where
        codes = rule.get("onExitCodes")
        assert (codes is None) != (rule.get("onPodConditions") is None), where
        if codes is None:
            continue
        assert codes.get("containerName", names[0]) in names, where
        assert codes["operator"] in {"In", "NotIn"}, where
        values = set(codes["values"])
        assert values <= EXIT_CODES, f"{where}: exit codes {sorted(values - EXIT_CODES)}"
        if codes["operator"] == "In":
            assert _common.EXIT_OK not in values, where  # Kubernetes refuses 0 with In
        if rule["action"] == "FailJob":
            failing = values if codes["operator"] == "In" else EXIT_CODES - values - {0}
            assert failing <= NOT_RETRIED, f"{where}: fails at once on {sorted(failing)}"


def retried_codes(expression: str, where: str) -> set[int]:
    """The exit codes on which an Argo ``retryStrategy.expression`` retries a step."""
    tests = EXIT_CODE_TEST.findall(expression)
    unreadable = f"{where}: an exit code test this file cannot read: {expression}"
    assert tests, unreadable
    assert len(tests) == expression.count("exitCode"), unreadable
    assert not re.search(r"!(?!=)", expression), unreadable  # `!(...)` turns them around
    codes: set[int] = set()
    for listed, single in tests:
        codes |= {int(code) for code in listed.split(",")} if listed else {int(single)}
    return codes


def check_workflow(workflow: dict[str, Any], where: str, check: Check) -> None:
    spec = workflow["spec"]
    templates = {template["name"]: template for template in spec["templates"]}
    assert len(templates) == len(spec["templates"]), f"{where}: template names repeat"
    assert spec["entrypoint"] in templates, where
    for name, template in templates.items():
        at = f"{where} {name}"
        assert len([key for key in TEMPLATE_TYPES if key in template]) == 1, at
        for parallel in template.get("steps", []):
            for step in parallel:
                assert step["template"] in templates, f"{at}: {step['template']}"
        for task in template.get("dag", {}).get("tasks", []):
            assert task["template"] in templates, f"{at}: {task['template']}"
        if "container" not in template:
            continue
        args = check(template["container"], at)
        retry = template.get("retryStrategy")
        if retry is None:
            continue
        # A second `run` would start the job again: only a wait is retried.
        assert args.command != "run", f"{at}: `run` is retried"
        assert retry.get("retryPolicy", "OnFailure") in RETRY_POLICIES, at
        codes = retried_codes(retry.get("expression", ""), at)
        assert codes <= EXIT_CODES, f"{at}: exit codes {sorted(codes - EXIT_CODES)}"
        assert not codes & NOT_RETRIED, f"{at}: retries {sorted(codes & NOT_RETRIED)}"


KINDS = {("batch/v1", "Job"): check_job, ("argoproj.io/v1alpha1", "Workflow"): check_workflow}


@pytest.mark.parametrize("block", MANIFESTS, ids=[block.name for block in MANIFESTS])
def test_each_manifest_has_what_its_kind_needs_and_runs_the_command_line(
    block: Block, check_container: Check
) -> None:
    for doc in documents(block):
        assert kind(doc) in KINDS, f"{block.name}: {kind(doc)}: teach this file the kind"
        metadata = doc["metadata"]
        assert metadata.get("name") or metadata.get("generateName"), block.name
        assert isinstance(doc["spec"], dict), block.name
        KINDS[kind(doc)](doc, block.name, check_container)
