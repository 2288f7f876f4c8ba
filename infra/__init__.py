"""The Pulumi program (infra/__main__.py) and everything it is built from."""
