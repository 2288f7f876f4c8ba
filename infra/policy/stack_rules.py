"""Stack rules: each looks at every resource of the stack at once."""

from __future__ import annotations

from fnmatch import fnmatchcase

from pulumi_policy import StackValidationArgs

from infra import sizing
from infra.policy.props import Report, as_list, containers, environment, of_type, policies_of, required, serves_http


def nothing_public_in_the_data_tier(args: StackValidationArgs, report: Report) -> None:
    """No public database or cache; the internet reaches only the load balancer's security group, on 80 and 443;
    no data-tier subnet gives public addresses."""
    for db in of_type(args.resources, "aws:rds/instance:Instance"):
        if db.props.get("publiclyAccessible"):
            report(f"database {db.props.get('identifier')} is publicly accessible", None)
    lb_groups = {g for lb in of_type(args.resources, "aws:lb/loadBalancer:LoadBalancer")
                 for g in lb.props.get("securityGroups") or []}
    for rule in of_type(args.resources, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"):
        props = rule.props
        if props.get("cidrIpv4") == "0.0.0.0/0" or props.get("cidrIpv6") == "::/0":
            if props.get("securityGroupId") not in lb_groups or \
                    (props.get("fromPort"), props.get("toPort")) not in ((80, 80), (443, 443)):
                report(f"ingress rule {rule.name} opens port {props.get('fromPort')} to the internet (only the "
                       "load balancer's 80 and 443 may be)", None)
    # A group's state lists every rule it has, its separate rules too: the load balancer's 80 and 443 appear there.
    for group in of_type(args.resources, "aws:ec2/securityGroup:SecurityGroup"):
        for ingress in group.props.get("ingress") or []:
            if "0.0.0.0/0" in (ingress.get("cidrBlocks") or []) or "::/0" in (ingress.get("ipv6CidrBlocks") or []):
                if group.props.get("id") in lb_groups and (ingress.get("fromPort"), ingress.get("toPort")) in (
                        (80, 80), (443, 443)):
                    continue
                report(f"security group {group.name} has a rule open to the internet", None)
    for subnet in of_type(args.resources, "aws:ec2/subnet:Subnet"):
        if (subnet.props.get("tags") or {}).get("Tier") in ("private", "isolated") and \
                subnet.props.get("mapPublicIpOnLaunch"):
            report(f"subnet {subnet.name} ({subnet.props['tags']['Tier']}) gives public addresses", None)


def connection_pooling_within_budget(args: StackValidationArgs, report: Report) -> None:
    tasks = [c for r in of_type(args.resources, "aws:ecs/taskDefinition:TaskDefinition")
             for c in containers(r.props) if serves_http(c)]
    targets = of_type(args.resources, "aws:appautoscaling/target:Target")
    if not tasks:
        return
    env = environment(tasks[0])
    if not all(env.get(k) for k in ("DB_POOL_SIZE", "DB_MAX_OVERFLOW", "WEB_CONCURRENCY")):
        report("the application does not set DB_POOL_SIZE, DB_MAX_OVERFLOW and WEB_CONCURRENCY: its connection "
               "use is unbounded", None)
        return
    max_tasks = max((int(t.props.get("maxCapacity") or 1) for t in targets), default=1)
    needed = sizing.connections(max_tasks, int(env["WEB_CONCURRENCY"]), int(env["DB_POOL_SIZE"]),
                                int(env["DB_MAX_OVERFLOW"]))
    for db in of_type(args.resources, "aws:rds/instance:Instance"):
        instance_class = db.props.get("instanceClass", "")
        budget = sizing.connection_budget(instance_class)
        if budget is None or needed > budget:
            report(f"{max_tasks} tasks x {env['WEB_CONCURRENCY']} workers x (pool {env['DB_POOL_SIZE']} + "
                   f"overflow {env['DB_MAX_OVERFLOW']}) = {needed} connections; {db.props.get('identifier')} "
                   f"({db.props.get('instanceClass')}) allows {sizing.max_connections(instance_class)}", None)


def alarms_present(args: StackValidationArgs, report: Report) -> None:
    alarms = of_type(args.resources, "aws:cloudwatch/metricAlarm:MetricAlarm")
    watched = {q["metric"]["metricName"] for a in alarms for q in a.props.get("metricQueries") or []
               if q.get("metric")} | {a.props.get("metricName") for a in alarms}
    needed = {"HTTPCode_Target_5XX_Count", "TargetResponseTime", "UnHealthyHostCount", "CPUUtilization",
              "MemoryUtilization", "FreeStorageSpace", "DatabaseConnections", "EngineCPUUtilization"}
    if needed - watched:
        report("no alarm on " + ", ".join(sorted(needed - watched)), None)
    silent = [a.name for a in alarms if not a.props.get("alarmActions")]
    if silent:
        report("alarms that notify nobody: " + ", ".join(silent), None)
    if alarms and required(args, "monitoring.alarmEmails") and \
            not of_type(args.resources, "aws:sns/topicSubscription:TopicSubscription"):
        report("the alarm topic has no subscriber: set monitoring.alarmEmails", None)
    for service in of_type(args.resources, "aws:ecs/service:Service"):
        alarms_cfg = service.props.get("alarms") or {}
        if not (alarms_cfg.get("enable") and alarms_cfg.get("rollback") and alarms_cfg.get("alarmNames")):
            report(f"service {service.props.get('name')} does not roll back deployments on alarms", None)


def backups_and_restore_drill(args: StackValidationArgs, report: Report) -> None:
    least_days = required(args, "database.backupRetentionDays") or 1
    for db in of_type(args.resources, "aws:rds/instance:Instance"):
        days = db.props.get("backupRetentionPeriod") or 0
        if db.props.get("replicateSourceDb"):
            continue
        if not days:
            report(f"database {db.props.get('identifier')} has no automated backups", None)
        elif days < least_days:
            report(f"database {db.props.get('identifier')} keeps automated backups {days} days; this tier keeps "
                   f"at least {least_days}", None)
    plans = of_type(args.resources, "aws:backup/plan:Plan")
    if required(args, "snapshots.enabled") and not of_type(args.resources, "aws:backup/selection:Selection"):
        report("no AWS Backup plan takes snapshots of the database", None)
    if required(args, "snapshots.copyRegion") and not any(rule.get("copyActions") for plan in plans
                                                        for rule in plan.props.get("rules") or []):
        report("no AWS Backup rule copies the snapshots to a vault in a second region", None)
    # By family, not ARN: a task definition's ARN is unknown in a preview whenever the image changes. The backup
    # schedules are named after the task family they run (infra/components/backup_jobs.py).
    commands = {}
    for task in of_type(args.resources, "aws:ecs/taskDefinition:TaskDefinition"):
        for container in containers(task.props):
            commands[task.props.get("family")] = " ".join(container.get("command") or [])
    scheduled = [commands.get(s.props.get("name"), "") for s in of_type(args.resources,
                                                                       "aws:scheduler/schedule:Schedule")]
    if not any("backup create" in c for c in scheduled):
        report("no scheduled logical backup (flask backup create)", None)
    if not any("backup drill" in c for c in scheduled):
        report("no scheduled restore drill (flask backup drill): the restore is never tested", None)


def database_credentials_least_privilege(args: StackValidationArgs, report: Report) -> None:
    """No container that serves HTTP gets the master or the owner login, by injection, by the variables the
    migration step uses, by name or by secret, and no serving task's role may read their secrets (wildcards
    included): code running in a web task can reach rows, not the schema or the roles."""
    privileged = [s.props for s in of_type(args.resources, "aws:secretsmanager/secret:Secret")
                  if (s.props.get("tags") or {}).get("DatabaseLogin") in ("master", "owner")]
    arns = {arn for props in privileged for arn in (props.get("arn"), props.get("id")) if arn}
    users = {(props.get("tags") or {}).get("DatabaseUser") for props in privileged} - {None}
    users |= {db.props.get("username") for db in of_type(args.resources, "aws:rds/instance:Instance")} - {None}
    for task in of_type(args.resources, "aws:ecs/taskDefinition:TaskDefinition"):
        serving = [c for c in containers(task.props) if serves_http(c)]
        for container in serving:
            env = environment(container)
            injected = {s["name"]: str(s.get("valueFrom", "")) for s in container.get("secrets", [])}
            leaks = [name for name, source in injected.items() if any(source.startswith(arn) for arn in arns)]
            leaks += [name for name in (*env, *injected) if name.startswith(("DATABASE_MASTER_", "DATABASE_OWNER_"))]
            if env.get("DATABASE_SECRET_ARN") in arns:
                leaks.append("DATABASE_SECRET_ARN")
            if env.get("DATABASE_USER") in users:
                leaks.append("DATABASE_USER")
            if leaks:
                report(f"task {task.props.get('family')}, container {container['name']}: {', '.join(sorted(leaks))} "
                       "give the serving application the master or owner login", None)
        if serving:
            for grant in policies_of(args, task, "taskRoleArn"):
                readable = sorted({arn for st in grant.get("Statement", []) if st.get("Effect") == "Allow"
                                   and any(fnmatchcase("secretsmanager:GetSecretValue", a)
                                           for a in as_list(st.get("Action")))
                                   for pattern in as_list(st.get("Resource")) for arn in arns
                                   if fnmatchcase(arn, pattern)})
                if readable:
                    report(f"task {task.props.get('family')}: its task role may read {', '.join(readable)} (the master "
                           "or owner login)", None)


def secrets_rotated(args: StackValidationArgs, report: Report) -> None:
    """Every secret says how it rotates (tag Rotation); a scheduled one has a rotation with a function and a
    schedule (a database login always is)."""
    rotations = of_type(args.resources, "aws:secretsmanager/secretRotation:SecretRotation")
    for secret in of_type(args.resources, "aws:secretsmanager/secret:Secret"):
        tags = secret.props.get("tags") or {}
        how = tags.get("Rotation")
        if how not in ("scheduled", "runbook") or (tags.get("DatabaseLogin") and how != "scheduled"):
            report(f"secret {secret.name}: rotation {how or '(not declared)'}; a database login rotates on a "
                   "schedule, any other secret says how (tag Rotation: scheduled or runbook)", None)
            continue
        if how == "runbook":
            continue
        rotation = next((r for r in rotations if secret in r.property_dependencies.get("secretId", [])
                         or r.props.get("secretId") in (secret.props.get("arn"), secret.props.get("id"))), None)
        if rotation is None:
            report(f"secret {secret.name} is never rotated: give it a rotation (aws.secretsmanager.SecretRotation)",
                   None)
        elif not rotation.props.get("rotationLambdaArn") or not (rotation.props.get("rotationRules") or {}).get(
                "scheduleExpression"):
            report(f"secret {secret.name}: its rotation has no function or no schedule", None)
