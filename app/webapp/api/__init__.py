"""The JSON API blueprints."""
