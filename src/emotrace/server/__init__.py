"""``emotrace serve``: the clinician's web app and a REST API, on this machine only by default.

* :mod:`~emotrace.server.app`: the FastAPI application (:func:`create_app`).
* :mod:`~emotrace.server.state`: :class:`ServerConfig` and the state the handlers share.
* :mod:`~emotrace.server.auth`: the access token, cookie, Host and Origin checks, body limit, CSP.
* :mod:`~emotrace.server.routes`: the REST API under ``/api/v1``.
* :mod:`~emotrace.server.websocket` and :mod:`~emotrace.server.live`: live sessions fed by the page.
* :mod:`~emotrace.server.engine`: the shared recognizer and its inference threads.
* :mod:`~emotrace.server.images`: uploads checked and decoded in memory.
* :mod:`~emotrace.server.runner`: :func:`serve` (uvicorn, the printed URL, the browser).
* ``static/``: the page (plain HTML, CSS and JavaScript; no build step, nothing external).

Needs the ``serve`` extra: ``pip install "emotrace[serve]"``.
"""

from emotrace.server.app import create_app
from emotrace.server.runner import serve
from emotrace.server.state import ServerConfig

__all__ = ["ServerConfig", "create_app", "serve"]
