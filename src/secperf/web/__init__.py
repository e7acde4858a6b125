"""The HTTP server: REST API, live stream, Prometheus exposition and the dashboard.

``create_app`` builds the FastAPI app over a store and a bus; ``serve`` runs it
under uvicorn (loopback by default; any other address needs a token).
"""

from secperf.web.app import create_app
from secperf.web.server import UnsafeBindError, check_bind, serve

__all__ = ["UnsafeBindError", "check_bind", "create_app", "serve"]
