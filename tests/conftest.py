"""Shared fixtures. The infra tests run the real program under Pulumi's mock engine through infra.harness."""
