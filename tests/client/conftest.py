"""The client tests use the server tests' fixtures (both databases, a live server)."""

from tests.server.conftest import Served, db_url, served

__all__ = ["Served", "db_url", "served"]
