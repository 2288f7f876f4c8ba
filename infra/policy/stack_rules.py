"""Stack rules: each looks at every resource of the stack at once."""

from __future__ import annotations

from pulumi_policy import StackValidationArgs

from infra import sizing
from infra.policy.props import Report, containers, environment, of_type, required, serves_http


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
    for group in of_type(args.resources, "aws:ec2/securityGroup:SecurityGroup"):
        for ingress in group.props.get("ingress") or []:
            if "0.0.0.0/0" in (ingress.get("cidrBlocks") or []) or "::/0" in (ingress.get("ipv6CidrBlocks") or []):
                report(f"security group {group.name} has an inline rule open to the internet", None)
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
