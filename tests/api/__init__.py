"""Tests of the HTTP service against a real uvicorn server (a package, so its conftest does not shadow tests/conftest.py)."""
