"""The settings of the serving path: the image, the load balancer and its firewall, the service, and the alarms on
them."""

from __future__ import annotations

import re
from dataclasses import dataclass

from infra import sizing
from infra.catalog import ELB_TLS13_POLICIES, WAF_ALB_BODY_LIMIT_BYTES, WAF_RATE_WINDOWS, WAF_RULE_GROUPS
from infra.settings.fields import same, setting
from infra.settings.values import RATE_LIMITS, between, emails, matches, one_of, zero_or_between


def elb_tls_policy(value: str):
    if value not in ELB_TLS13_POLICIES:
        return "not a TLS 1.3 security policy ELB offers", "one listed in infra/catalog.py, e.g. " \
            "ELBSecurityPolicy-TLS13-1-2-Res-2021-06"


def managed_rules(value: list[str]):
    bad = [v for v in value if not re.fullmatch(r"[A-Za-z0-9_-]+/[A-Za-z0-9_-]{1,128}", v)
           or v.split("/")[0] not in WAF_RULE_GROUPS]
    if bad or len(set(value)) != len(value):
        return "not <managed rule group>/<rule name> of the firewall's groups, or named twice", \
            "e.g. AWSManagedRulesCommonRuleSet/SizeRestrictions_BODY; the groups: " + ", ".join(WAF_RULE_GROUPS)


@dataclass(frozen=True)
class MonitoringSettings:
    alarm_emails: list[str] = setting("addresses the alarm topic mails (each confirms its subscription once)", emails,
                                      shape=len)
    http_5xx_percent: int = setting("alarm: 5xx answers (application and load balancer) as % of requests",
                                    between(1, 100))
    p99_response_ms: int = setting("alarm: p99 target response time in milliseconds", between(10, 120000))
    task_cpu_percent: int = setting("alarm: average CPU of the service's tasks, %", between(10, 100))
    task_memory_percent: int = setting("alarm: average memory of the service's tasks, %", between(10, 100))
    database_cpu_percent: int = setting("alarm: CPU of the busiest database instance, %", between(10, 100))
    database_free_storage_percent: int = setting("alarm: free storage of any database instance below this % of "
                                                 "allocatedStorage (below storage autoscaling's own 10 %: the alarm "
                                                 "means autoscaling did not keep up or hit its ceiling)",
                                                 between(1, 90))
    database_connections_percent: int = setting("alarm: connections of any database instance as % of its "
                                                "max_connections (the connection budget allows "
                                                f"{sizing.BUDGET_PERCENT})",
                                                between(10, 100))
    replica_lag_seconds: int = setting("alarm: replica lag of the slowest replica, seconds", between(1, 3600))
    cache_cpu_percent: int = setting("alarm: Redis engine CPU of the busiest node, %", between(10, 100))
    cache_memory_percent: int = setting("alarm: Redis memory use of the fullest node, %", between(10, 100))
    cache_evictions: int = setting("alarm: keys evicted per 5 minutes on any node", between(1, 1_000_000))
    firewall_blocked_percent: int = setting("alarm: requests the firewall blocked as % of all it saw", between(1, 100))


@dataclass(frozen=True)
class ImageSettings:
    uri: str = setting("prebuilt image by digest (what CI deploys); empty: build app/Dockerfile and push to ECR",
                       matches(r"^([a-z0-9.-]+(:\d+)?/[a-z0-9._/-]+@sha256:[0-9a-f]{64})?$",
                               "<registry>/<repository>@sha256:<64 hex digits>, or empty"), shape=bool)
    platform: str = setting("image platform: linux/arm64 (Graviton) or linux/amd64", one_of("linux/arm64",
                                                                                            "linux/amd64"))
    keep_images: int = setting("images the ECR lifecycle policy keeps", between(1, 1000))

    @property
    def cpu_architecture(self) -> str:
        """The platform as ECS names it in a task definition's runtime platform."""
        return "ARM64" if self.platform == "linux/arm64" else "X86_64"


@dataclass(frozen=True)
class LoadBalancerSettings:
    domain: str = setting("public name of the service (empty: the load balancer's DNS name)",
                          matches(r"^([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}$|^$", "a DNS name, or empty"),
                          shape=bool)
    hosted_zone_id: str = setting("Route 53 zone of the domain: DNS-validated certificate and alias record",
                                  matches(r"^(Z[A-Z0-9]{5,31})?$", "a hosted zone id such as Z0123456789ABC, or empty"),
                                  shape=bool)
    certificate_arn: str = setting("an existing ACM certificate for the domain (instead of a new DNS-validated one)",
                                   matches(r"^(arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate/[0-9a-f-]+)?$",
                                           "an ACM certificate ARN, or empty"), shape=bool)
    allow_http: bool = setting("serve plain HTTP when there is no certificate (dev only; the plan flags it)")
    ssl_policy: str = setting("TLS policy of the HTTPS listener: one ELB offers with TLS 1.3 (infra/catalog.py); "
                              "staging and prod take only those without CBC suites",
                              elb_tls_policy)
    idle_timeout_seconds: int = setting("idle connection timeout", between(1, 4000))
    deletion_protection: bool = setting("AWS refuses to delete the load balancer")
    health_check_path: str = setting("the application's liveness path", matches(
        r"/[!-~]{0,1023}", "a path starting with /, printable ASCII without spaces, at most 1024 characters"))
    health_check_interval_seconds: int = setting("seconds between target health checks", between(5, 300))
    health_check_timeout_seconds: int = setting("seconds a health check may take", between(2, 120))
    healthy_threshold: int = setting("passing checks before a target receives traffic", between(2, 10))
    unhealthy_threshold: int = setting("failing checks before a target is taken out", between(2, 10))
    deregistration_delay_seconds: int = setting("seconds a draining target keeps its in-flight requests",
                                                between(0, 30))
    slow_start_seconds: int = setting("seconds a new target's share of traffic ramps up (0: off)",
                                      zero_or_between(30, 900, "not accepted by ELB"))

    @property
    def https(self) -> bool:
        """Is there, or will there be, a certificate to serve HTTPS with?"""
        return bool(self.certificate_arn or (self.domain and self.hosted_zone_id))


@dataclass(frozen=True)
class FirewallSettings:
    mode: str = setting("AWS WAF on the load balancer: block what its rules match, only count it (and log), or off",
                        one_of("block", "count", "off"), shape=lambda mode: mode != "off")
    rate_limit: int = setting("requests one client address may send in rateWindowSeconds before it gets 429",
                              between(10, 2_000_000_000))
    rate_window_seconds: int = setting("the rate limit's window", one_of(*WAF_RATE_WINDOWS))
    count_rules: list[str] = setting("rules of the managed groups that only count (and log) while the rest block: "
                                     "for a rule that blocks legitimate requests, while it is tuned; "
                                     "<group>/<rule>, the plan lists them", managed_rules)


@dataclass(frozen=True)
class ServiceSettings:
    cpu: int = setting("task CPU units (1024 = 1 vCPU)", one_of(*sizing.FARGATE_MEMORY))
    memory: int = setting("task memory in MiB (a Fargate pair with cpu)", between(512, 122880))
    port: int = setting("port Gunicorn binds in the container", between(1024, 65535))
    min_tasks: int = setting("fewest running tasks (autoscaling floor)", between(1, 1000))
    max_tasks: int = setting("most running tasks (autoscaling ceiling)", between(1, 1000))
    workers: int = setting("Gunicorn worker processes per task (WEB_CONCURRENCY)", between(1, 64))
    threads: int = setting("threads per Gunicorn worker (gthread)", between(1, 64))
    db_pool_size: int = setting("SQLAlchemy pool size per worker process (DB_POOL_SIZE)", between(1, 100))
    db_max_overflow: int = setting("extra connections per worker process under load (DB_MAX_OVERFLOW)",
                                   between(0, 100))
    keepalive_seconds: int = setting("Gunicorn keep-alive; must outlast the load balancer's idle timeout",
                                     between(1, 4000))
    timeout_seconds: int = setting("Gunicorn worker timeout", between(5, 3600))
    graceful_timeout_seconds: int = setting("seconds Gunicorn lets in-flight requests finish after SIGTERM",
                                            between(1, 119))
    max_requests: int = setting("requests a Gunicorn worker serves before it is replaced, with 10 % jitter "
                                "(GUNICORN_MAX_REQUESTS); 0: never (a leaking task is replaced by ECS at its "
                                "memory limit)", between(0, 100_000_000))
    stop_timeout_seconds: int = setting("seconds ECS waits after SIGTERM before SIGKILL (at most 120)",
                                        between(2, 120))
    startup_seconds: int = setting("seconds a new task needs before /health answers (the container health "
                                   "check's start period, which ECS caps at 300)", between(1, 300))
    health_check_grace_period_seconds: int = setting("seconds ECS ignores failing health checks of a new task",
                                                     between(0, 3600))
    spot_weight: int = setting("share of tasks on Fargate Spot against 1 on Fargate (0: none)", between(0, 10))
    ecs_exec: bool = setting("allow `aws ecs execute-command` into the tasks", shape=same)
    public_reads: bool = setting("anyone may read the API (APP_PUBLIC_READS); off: reads need a token like writes",
                                 shape=same)
    rate_limit_per_address: str = setting("requests a client address may make, all routes together, counted in Redis "
                                          "by every task (RATE_LIMIT_PER_ADDRESS); the WAF's rate rule is the coarse "
                                          "line before it", matches(RATE_LIMITS, "e.g. 600 per minute or "
                                                                    "10/second;500/hour"))
    rate_limit_writes: str = setting("writes an API token may make (RATE_LIMIT_WRITES)",
                                               matches(RATE_LIMITS, "e.g. 120 per minute"))
    cpu_target: int = setting("target average CPU % for autoscaling", between(10, 90))
    memory_target: int = setting("target average memory % for autoscaling", between(10, 90))
    requests_per_target: int = setting("target requests per task per minute (ALBRequestCountPerTarget)",
                                       between(1, 1_000_000))
    scale_in_cooldown_seconds: int = setting("seconds between scale-in steps", between(0, 3600))
    scale_out_cooldown_seconds: int = setting("seconds between scale-out steps", between(0, 3600))
    app_env: str = setting("the application's config class (APP_ENV); deployed stacks run staging or production",
                           one_of("staging", "production"))
    log_level: str = setting("application log level (LOG_LEVEL)", one_of("DEBUG", "INFO", "WARNING", "ERROR"))
    max_body_bytes: int = setting("largest request body the application accepts (MAX_CONTENT_LENGTH); the "
                                  f"firewall blocks larger ones, and inspects at most {WAF_ALB_BODY_LIMIT_BYTES} "
                                  "bytes of a body", between(1024, 104_857_600))
