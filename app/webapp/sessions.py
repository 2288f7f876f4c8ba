"""The session interface create_app installs."""

from flask.sessions import SecureCookieSessionInterface

from webapp.credentials import SigningKeys


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions. The signing serializer is built once per key set instead of per request (it
    was a fifth of a cached API read); the key set is SECRET_KEY + SECRET_KEY_FALLBACKS, or the rotating secret
    SECRET_KEY_SECRET_ARN, whose new keys every request sees (the caching client re-reads it on its interval).
    app.config follows the key set, so Flask-WTF's CSRF tokens sign with the current key too."""

    def get_signing_serializer(self, app):
        keys = app.extensions.get("signing_keys")
        if keys is None:
            keys = app.extensions["signing_keys"] = SigningKeys(
                app.config["SECRET_KEY_SECRET_ARN"], app.config["SECRET_KEY"], app.config["SECRET_KEY_FALLBACKS"])
        current, fallbacks = keys.current()
        cached = app.extensions.get("session_serializer")
        if cached is None or cached[0] != (current, fallbacks):
            app.config["SECRET_KEY"], app.config["SECRET_KEY_FALLBACKS"] = current, list(fallbacks)
            cached = app.extensions["session_serializer"] = ((current, fallbacks),
                                                             super().get_signing_serializer(app))
        return cached[1]
