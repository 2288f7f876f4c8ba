"""Checks on what goes verbatim to AWS: task definitions against botocore's model, IAM documents with parliament."""

from __future__ import annotations

import json

import botocore.session
from botocore.validate import ParamValidator
from parliament import analyze_policy_string
from parliament import config as parliament_config

SEVERITY = {"LOW": 1, "MEDIUM": 2, "HIGH": 3, "CRITICAL": 4}


def task_definition_problems(inputs: dict) -> str:
    """Validate a recorded aws.ecs.TaskDefinition as the RegisterTaskDefinition call it becomes ("" if valid)."""
    params = {
        "family": inputs["family"],
        "containerDefinitions": json.loads(inputs["containerDefinitions"]),
        "cpu": inputs["cpu"],
        "memory": inputs["memory"],
        "networkMode": inputs["networkMode"],
        "requiresCompatibilities": inputs["requiresCompatibilities"],
        "runtimePlatform": {"operatingSystemFamily": inputs["runtimePlatform"]["operatingSystemFamily"],
                            "cpuArchitecture": inputs["runtimePlatform"]["cpuArchitecture"]},
        "executionRoleArn": inputs["executionRoleArn"],
        "taskRoleArn": inputs["taskRoleArn"],
        "volumes": inputs["volumes"],
    }
    shape = botocore.session.get_session().get_service_model("ecs").operation_model(
        "RegisterTaskDefinition").input_shape
    report = ParamValidator().validate(params, shape)
    return report.generate_report() if report.has_errors() else ""


def policy_findings(document: str | dict) -> list[str]:
    """parliament's findings worth failing on: anything above LOW, and a "*" resource where the action could be
    scoped (RESOURCE_STAR)."""
    text = document if isinstance(document, str) else json.dumps(document)
    found = []
    for finding in analyze_policy_string(text).findings:
        severity = parliament_config.get(finding.issue, {}).get("severity", "LOW")
        if SEVERITY.get(severity, 1) > SEVERITY["LOW"] or finding.issue in ("RESOURCE_STAR",
                                                                           "RESOURCE_EFFECTIVELY_STAR"):
            found.append(f"{finding.issue} ({severity}): {finding.detail}")
    return found
