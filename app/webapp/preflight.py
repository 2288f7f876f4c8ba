"""`python -m webapp.preflight [--serve]`: refuse, with one clear line and exit code 2, a configuration that must not
run. Every process of the image checks its configuration; one that serves HTTP (`--serve`) also its signing key.
The line is JSON, like every other line the container writes, so the log pipeline reads it too."""

import logging
import sys

from webapp.backups.settings import BackupSettings
from webapp.config import ConfigError, load
from webapp.logs import json_formatter


def logger() -> logging.Logger:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(json_formatter())
    log = logging.getLogger("webapp.preflight")
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.INFO)
    return log


def main(argv: list[str]) -> int:
    log = logger()
    try:
        config = load()
        if "--serve" in argv:
            config.validate_serving()
        BackupSettings.from_environment()  # the backup tasks start through the same entrypoint
    except ConfigError as err:
        log.error(f"error: {err}")
        return 2
    log.info(f"configuration ok: APP_ENV={config.ENV_NAME}", extra={"env": config.ENV_NAME})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
