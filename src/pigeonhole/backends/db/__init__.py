"""
The default store: two tables in the project's own database.

``backend`` holds ``DatabaseBackend``; ``sql`` the statements it writes by
hand, as functions of a connection, so each can be read and tested alone.
"""

from .backend import DatabaseBackend

__all__ = ["DatabaseBackend"]
