"""kopf's JSON parsed by orjson, applied when the handlers load.

kopf parses every watch event with the standard library's ``json.loads`` (one line of the stream at a time) and
every other answer (a listing's page, a patch's answer) with aiohttp's ``response.json()``, which is the same
parser. orjson parses the same text into the same objects (dicts, lists, strings, numbers, booleans and None)
about twice as fast, and shares the keys of every object it parses, where ``json`` shares them within one
document only. It refuses what the standard parser refuses, but for NaN and Infinity, which are not JSON and
which the API server never sends. Side by side on the project's control plane (1,000 batch Workloads at once),
kopf alone took 9.2 against 9.9 ms of CPU per lifecycle, and 10.4 against 10.7 in a second run; the operator
28.2 against 28.8 (docs/performance.md).

Two names are replaced in kopf's API module (``kopf._cogs.clients.api``): its ``json`` (whose ``loads`` its
watch stream calls), and its ``request``, whose responses then parse with orjson when ``get``, ``patch`` and the
others read them. Should that module move or change shape, nothing is patched (with a warning): kopf then
parses with the standard library, as slowly and as correctly.
"""

from __future__ import annotations

import functools
import inspect
import json
import logging
import types
from typing import Any

import orjson

logger = logging.getLogger(__name__)

try:
    from kopf._cogs.clients import api  # kopf's private module: guarded
except ImportError:  # pragma: no cover - a kopf that moved it
    api = None  # type: ignore[assignment]

# What kopf's API module reads of ``json``: ``loads`` (its watch stream); the rest as the standard library's.
JSON = types.SimpleNamespace(**{**{name: getattr(json, name) for name in json.__all__}, "loads": orjson.loads},
                             parses_with_orjson=True)


def parse_kopfs_json_with_orjson() -> bool:
    """Make kopf parse watch events and API answers with orjson; whether it could."""
    request, current = getattr(api, "request", None), getattr(api, "json", None)
    if getattr(current, "parses_with_orjson", False):
        return True  # applied already
    if current is not json or not inspect.iscoroutinefunction(request) \
            or not all(inspect.iscoroutinefunction(getattr(api, name, None)) for name in ("get", "patch")) \
            or not inspect.isasyncgenfunction(getattr(api, "stream", None)):
        logger.warning("kopf's API module has moved or changed: kopf parses JSON with the standard library")
        return False

    @functools.wraps(request)
    async def request_parsed_with_orjson(*args: Any, **kwargs: Any) -> Any:
        response = await request(*args, **kwargs)
        response.json = functools.partial(response.json, loads=JSON.loads)  # this response only
        return response

    request_parsed_with_orjson.parses_with_orjson = True  # type: ignore[attr-defined]
    api.request = request_parsed_with_orjson
    api.json = JSON
    return True
