"""A JSON-RPC client of a node, for the command line (``status``, ``query``, ``tx``)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from chain.errors import BizraError

DEFAULT_NODE = "http://127.0.0.1:8080"


class ClientError(BizraError):
    """The node could not be reached, or answered with an error (its message is here)."""


class Client:
    """Calls the node at ``url`` (``http://host:port``)."""

    def __init__(self, url: str = DEFAULT_NODE, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def call(self, method: str, **params: Any) -> Any:
        """The method's result; ClientError with the node's error message otherwise."""
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).encode()
        request = urllib.request.Request(self.url + "/", body, {"content-type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            try:
                answer = json.loads(exc.read())
            except ValueError:
                raise ClientError(f"{self.url}: HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise ClientError(f"cannot reach a node at {self.url}: {getattr(exc, 'reason', exc)}") from None
        except ValueError:
            raise ClientError(f"{self.url} did not answer with JSON: is it a BIZRA node?") from None
        if "error" in answer:
            error = answer["error"]
            raise ClientError(f"{method}: {error.get('message')}: {error.get('data')}")
        return answer["result"]
