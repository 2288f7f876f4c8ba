"""The reference for the application benchmark: the smallest Flask app, under Gunicorn's own defaults."""

from flask import Flask, jsonify

app = Flask(__name__)


@app.get("/health")
def health():
    return jsonify(status="ok")
