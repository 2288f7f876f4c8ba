"""The tiers as data: each requirement is written once and read by settings validation and the policy pack alike."""

import pytest

from infra import settings, tiers
from infra.offline import checklist
from infra.policy import levels, rules
from infra.settings.fields import value_at
from infra.tiers.requirements import MANDATORY
from tests.infra.conftest import settings_for

POLICY = {p.name: p for p in rules.POLICIES}


def test_requirements_and_enforcement_name_real_tiers_keys_and_rules():
    assert set(tiers.ENFORCEMENT) == set(tiers.TIERS)
    for tier, (default, named) in tiers.ENFORCEMENT.items():
        assert default in (MANDATORY, "advisory"), tier
        assert set(named) <= set(POLICY), tier
    defaults = settings_for("prod")
    for requirement in tiers.REQUIREMENTS:
        assert requirement.policy in POLICY
        assert set(requirement.tiers) <= set(tiers.TIERS)
        for key in (requirement.key, *requirement.also):
            value_at(defaults, key)  # a key of the schema


def test_a_rule_is_mandatory_wherever_one_of_its_requirements_applies():
    """Settings refuse a stack that breaks a requirement; the policy pack must not merely advise about it."""
    for requirement in tiers.REQUIREMENTS:
        for tier in requirement.tiers:
            assert tiers.level(tier, requirement.policy) == MANDATORY, (requirement.key, tier)


def test_the_policy_config_files_carry_the_requirements():
    prod = levels.config("prod")["backups-and-restore-drill"]
    assert prod == {"enforcementLevel": "mandatory", "database.backupRetentionDays": 7, "snapshots.enabled": True,
                    "snapshots.copyRegion": True}
    assert levels.config("staging")["alarms-present"]["monitoring.alarmEmails"] is True
    assert levels.config("dev")["alarms-present"] == {"enforcementLevel": "advisory", "monitoring.alarmEmails": None}
    assert levels.config("staging")["backups-and-restore-drill"]["database.backupRetentionDays"] is None


def test_each_rule_declares_the_configuration_it_takes():
    for requirement in tiers.REQUIREMENTS:
        schema = POLICY[requirement.policy].config_schema
        assert schema is not None and requirement.key in schema.properties
    properties = POLICY["backups-and-restore-drill"].config_schema.properties
    assert properties["database.backupRetentionDays"]["type"] == ["integer", "null"]
    assert POLICY["https-only"].config_schema.properties["loadBalancer.allowHttp"]["type"] == ["boolean", "null"]


def test_the_policy_config_files_are_valid_for_their_rules_schemas():
    """What `pulumi preview --policy-pack-config` checks: each rule's properties against its config schema."""
    import jsonschema

    for tier in tiers.TIERS:
        for name, config in levels.config(tier).items():
            schema = POLICY[name].config_schema
            properties = {k: v for k, v in config.items() if k != "enforcementLevel"}
            assert bool(properties) == (schema is not None), name
            if schema:
                jsonschema.validate(properties, {"type": "object", "properties": schema.properties,
                                                 "additionalProperties": False})


def test_a_requirement_changed_in_one_place_changes_settings_and_the_policy_pack(stacks, monkeypatch):
    """prod asking for 31 days of backups: the stack file's 30 is refused before any resource, and the pack flags
    the 30 days the plan declares."""
    stricter = [tiers.Requirement(r.key, r.policy, r.kind, {"prod": 31}, r.why, r.allowed)
                if r.key == "database.backupRetentionDays" else r for r in tiers.REQUIREMENTS]
    monkeypatch.setattr(tiers, "REQUIREMENTS", tuple(stricter))
    monkeypatch.setattr("infra.tiers.requirements.REQUIREMENTS", tuple(stricter))
    with pytest.raises(settings.SettingsError) as caught:
        settings_for("prod")
    assert [str(p) for p in caught.value.problems] == [
        'flask-aws:database.backupRetentionDays = 30: prod keeps at least 31 days of backups. Allowed: 31..35.']
    verdict = next(v for v in checklist.evaluate(stacks["prod"]) if v.policy == "backups-and-restore-drill")
    assert verdict.blocking
    assert verdict.violations == ["database flask-aws-prod-db keeps automated backups 30 days; this tier keeps at "
                                  "least 31"]


@pytest.mark.parametrize("tier, problems", [
    ("dev", set()),
    ("staging", {"monitoring.alarmEmails", "loadBalancer.allowHttp"}),
    ("prod", {"database.backupRetentionDays", "database.deletionProtection", "snapshots.enabled",
              "snapshots.copyRegion", "monitoring.alarmEmails", "loadBalancer.allowHttp"}),
])
def test_each_tier_refuses_what_it_requires(tier, problems):
    broken = {"database": {"backupRetentionDays": 1, "deletionProtection": False, "replicas": 0},
              "snapshots": {"enabled": False, "copyRegion": ""}, "monitoring": {"alarmEmails": []},
              "loadBalancer": {"allowHttp": True}}
    try:
        settings_for(tier, **broken)
        found = set()
    except settings.SettingsError as err:
        found = {p.key.split(":", 1)[1] for p in err.problems}
    assert found == problems


def test_a_requirement_dropped_in_one_place_is_dropped_by_settings_and_the_pack_alike(stacks, monkeypatch):
    """staging no longer required to mail anyone: its settings accept no recipients, and the pack (mandatory in
    staging) no longer blocks a topic without subscribers; prod still does."""
    relaxed = [tiers.Requirement(r.key, r.policy, r.kind, {"prod": True}, r.why, r.allowed)
               if r.key == "monitoring.alarmEmails" else r for r in tiers.REQUIREMENTS]
    monkeypatch.setattr(tiers, "REQUIREMENTS", tuple(relaxed))
    monkeypatch.setattr("infra.tiers.requirements.REQUIREMENTS", tuple(relaxed))
    assert settings_for("staging", monitoring={"alarmEmails": []}).monitoring.alarm_emails == []
    resources = [r for r in checklist.policy_resources(stacks["staging"])
                 if r.resource_type != "aws:sns/topicSubscription:TopicSubscription"]
    alarms = POLICY["alarms-present"]
    assert checklist.violations(alarms, resources, tiers.policy_config("staging", "alarms-present")) == []
    assert checklist.violations(alarms, resources, tiers.policy_config("prod", "alarms-present")) == [
        "the alarm topic has no subscriber: set monitoring.alarmEmails"]
    # without a configuration (the pack run bare), every requirement holds at its strictest
    assert checklist.violations(alarms, resources) == ["the alarm topic has no subscriber: set monitoring.alarmEmails"]


def test_a_whole_number_from_the_engine_is_read_as_one():
    """The engine passes a rule's configuration through protobuf: 7 arrives as 7.0, and messages must say 7."""
    from pulumi_policy import StackValidationArgs

    from infra.policy.props import required

    args = StackValidationArgs([], {"database.backupRetentionDays": 7.0, "snapshots.enabled": None})
    assert required(args, "database.backupRetentionDays") == 7 and type(required(args,
                                                                             "database.backupRetentionDays")) is int
    assert required(args, "snapshots.enabled") is None
    assert required(StackValidationArgs([]), "database.backupRetentionDays") == 7  # no config: the strictest
