"""`python -m webapp.preflight [--serve]`: refuse, with one clear line and exit code 2, a configuration that must not
run. Every process of the image checks its configuration; one that serves HTTP (`--serve`) also its signing key."""

import sys

from webapp.backups.settings import BackupSettings
from webapp.config import ConfigError, load


def main(argv: list[str]) -> int:
    try:
        config = load()
        if "--serve" in argv:
            config.validate_serving()
        BackupSettings.from_environment()  # the backup tasks start through the same entrypoint
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"configuration ok: APP_ENV={config.ENV_NAME}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
