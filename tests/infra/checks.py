"""Checks on what goes verbatim to AWS: task definitions against botocore's model, IAM documents with parliament."""

from __future__ import annotations

import json
import re

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
    if inputs.get("ephemeralStorage"):
        params["ephemeralStorage"] = {"sizeInGiB": inputs["ephemeralStorage"]["sizeInGib"]}
    return model_problems("ecs", "RegisterTaskDefinition", params)


def schedule_problems(inputs: dict) -> str:
    """Validate a recorded aws.scheduler.Schedule with an ECS target as the CreateSchedule call it becomes."""
    target, ecs = inputs["target"], inputs["target"]["ecsParameters"]
    network = ecs["networkConfiguration"]
    params = {
        "Name": inputs["name"],
        "ScheduleExpression": inputs["scheduleExpression"],
        "ScheduleExpressionTimezone": inputs["scheduleExpressionTimezone"],
        "FlexibleTimeWindow": {"Mode": inputs["flexibleTimeWindow"]["mode"]},
        "Description": inputs["description"],
        "Target": {
            "Arn": target["arn"],
            "RoleArn": target["roleArn"],
            "RetryPolicy": {"MaximumRetryAttempts": target["retryPolicy"]["maximumRetryAttempts"],
                            "MaximumEventAgeInSeconds": target["retryPolicy"]["maximumEventAgeInSeconds"]},
            "EcsParameters": {
                "TaskDefinitionArn": ecs["taskDefinitionArn"],
                "LaunchType": ecs["launchType"],
                "TaskCount": ecs["taskCount"],
                "EnableECSManagedTags": ecs["enableEcsManagedTags"],
                "PropagateTags": ecs["propagateTags"],
                "NetworkConfiguration": {"awsvpcConfiguration": {
                    "Subnets": network["subnets"], "SecurityGroups": network["securityGroups"],
                    "AssignPublicIp": "ENABLED" if network["assignPublicIp"] else "DISABLED"}},
            },
        },
    }
    return model_problems("scheduler", "CreateSchedule", params)


def api_shape(value):
    """Recorded provider inputs (camelCase) in the API's shape (PascalCase), for the WAF's nested rules."""
    if isinstance(value, list):
        return [api_shape(item) for item in value]
    if not isinstance(value, dict):
        return value
    renamed = {"cloudwatchMetricsEnabled": "CloudWatchMetricsEnabled"}
    return {renamed.get(key, key[:1].upper() + key[1:]): api_shape(item) for key, item in value.items()}


def web_acl_problems(inputs: dict) -> str:
    """Validate a recorded aws.wafv2.WebAcl as the CreateWebACL call it becomes (custom response bodies are a list
    in the provider, a map in the API)."""
    params = {
        "Name": inputs["name"], "Scope": inputs["scope"], "Description": inputs["description"],
        "DefaultAction": api_shape(inputs["defaultAction"]), "Rules": api_shape(inputs["rules"]),
        "VisibilityConfig": api_shape(inputs["visibilityConfig"]),
        "CustomResponseBodies": {body["key"]: {"ContentType": body["contentType"], "Content": body["content"]}
                                 for body in inputs.get("customResponseBodies", [])},
    }
    return model_problems("wafv2", "CreateWebACL", params)


def waf_logging_problems(inputs: dict) -> str:
    """Validate a recorded aws.wafv2.WebAclLoggingConfiguration as the PutLoggingConfiguration call it becomes."""
    params = {"LoggingConfiguration": {"ResourceArn": inputs["resourceArn"],
                                       "LogDestinationConfigs": inputs["logDestinationConfigs"],
                                       "RedactedFields": api_shape(inputs["redactedFields"])}}
    return model_problems("wafv2", "PutLoggingConfiguration", params)


def model_problems(service: str, operation: str, params: dict) -> str:
    """botocore's own validation of an API call's parameters: unknown keys, types, required members, minimums,
    and (beyond botocore) maximums and enums, which the service would reject."""
    shape = botocore.session.get_session().get_service_model(service).operation_model(operation).input_shape
    report = ParamValidator().validate(params, shape)
    problems = [report.generate_report()] if report.has_errors() else []
    problems += _limits(params, shape, operation)
    return "\n".join(problems)


def _limits(value, shape, path: str) -> list[str]:
    found = []
    if shape.type_name == "structure" and isinstance(value, dict):
        for key, member in value.items():
            if key in shape.members:
                found += _limits(member, shape.members[key], f"{path}.{key}")
    elif shape.type_name == "list" and isinstance(value, list):
        for i, item in enumerate(value):
            found += _limits(item, shape.member, f"{path}[{i}]")
    elif shape.type_name == "string" and isinstance(value, str):
        if shape.enum and value not in shape.enum:
            found.append(f"{path}: {value!r} is not one of {shape.enum}")
        if "max" in shape.metadata and len(value) > shape.metadata["max"]:
            found.append(f"{path}: longer than {shape.metadata['max']}")
        if "pattern" in shape.metadata and not re.search(shape.metadata["pattern"], value):
            found.append(f"{path}: {value!r} does not match {shape.metadata['pattern']}")
    elif shape.type_name in ("integer", "long") and isinstance(value, int):
        if "max" in shape.metadata and value > shape.metadata["max"]:
            found.append(f"{path}: {value} is above {shape.metadata['max']}")
    return found


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


def metric_alarm_problems(inputs: dict) -> str:
    """Validate a recorded aws.cloudwatch.MetricAlarm (metric queries form) as the PutMetricAlarm call it becomes."""
    metrics = []
    for query in inputs["metricQueries"]:
        item = {"Id": query["id"], "ReturnData": query["returnData"]}
        if "expression" in query:
            item.update(Expression=query["expression"], Label=query["label"])
        else:
            metric = query["metric"]
            item["MetricStat"] = {"Metric": {"Namespace": metric["namespace"], "MetricName": metric["metricName"],
                                             "Dimensions": [{"Name": k, "Value": v}
                                                            for k, v in metric["dimensions"].items()]},
                                  "Period": metric["period"], "Stat": metric["stat"]}
        metrics.append(item)
    params = {"AlarmName": inputs["name"], "AlarmDescription": inputs["alarmDescription"],
              "ComparisonOperator": inputs["comparisonOperator"], "Threshold": inputs["threshold"],
              "EvaluationPeriods": inputs["evaluationPeriods"], "DatapointsToAlarm": inputs["datapointsToAlarm"],
              "TreatMissingData": inputs["treatMissingData"], "Metrics": metrics,
              "AlarmActions": inputs["alarmActions"], "OKActions": inputs["okActions"]}
    return model_problems("cloudwatch", "PutMetricAlarm", params)
