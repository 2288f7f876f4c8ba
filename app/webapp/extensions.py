"""Extension objects, created unbound and initialised by create_app (one set per process, after any fork). The
database's `db` is in database.py, beside the session class that routes its reads and writes."""

from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect

migrate = Migrate()
csrf = CSRFProtect()
