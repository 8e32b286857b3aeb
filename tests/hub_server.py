"""A local stand-in for the part of the Hub API that ``huggingface_hub`` 2.4 uses to push.

Routes: create a repo, validate card YAML, preupload (every file answered "regular", so no
Xet/LFS storage is needed), commit (application/x-ndjson, base64 file contents) and create a
branch. It records every request with its headers and body, and the files it received. Unknown
routes answer 404, never 5xx (the client retries those).
"""

from __future__ import annotations

import base64
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

REPO = r"/api/models/(?P<repo>[^/]+/[^/]+)"
ROUTES = {
    "create": re.compile(r"^/api/repos/create$"),
    "validate": re.compile(r"^/api/validate-yaml$"),
    "preupload": re.compile(REPO + r"/preupload/(?P<rev>.+)$"),
    "commit": re.compile(REPO + r"/commit/(?P<rev>.+)$"),
    "branch": re.compile(REPO + r"/branch/(?P<rev>.+)$"),
}


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class FakeHub:
    token: str
    fail: dict[str, int] = field(default_factory=dict)  # route -> status to answer instead
    requests: list[Request] = field(default_factory=list)
    files: dict[str, bytes] = field(default_factory=dict)  # path in repo -> content
    created: list[dict] = field(default_factory=list)
    commits: list[dict] = field(default_factory=list)  # {"repo", "revision", "header", "pr"}
    branches: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                hub.handle(self, "GET")

            def do_POST(self) -> None:
                hub.handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- request handling --------------------------------------------------------------------
    def handle(self, h: BaseHTTPRequestHandler, method: str) -> None:
        body = _read_body(h)
        path = urlsplit(h.path).path
        self.requests.append(
            Request(method, h.path, {k.lower(): v for k, v in h.headers.items()}, body)
        )
        route, match = next(
            ((name, m) for name, rx in ROUTES.items() if (m := rx.match(path))), (None, None)
        )
        if route is None or method != "POST":
            return _reply(h, 404, {"error": f"no route {method} {path}"})
        if h.headers.get("authorization") != f"Bearer {self.token}":
            return _reply(h, 401, {"error": "Invalid credentials in Authorization header"})
        if route in self.fail:
            return _reply(h, self.fail[route], {"error": f"{route} refused"})
        if route == "create":
            payload = json.loads(body)
            self.created.append(payload)
            name = f"{payload.get('organization')}/{payload['name']}"
            return _reply(h, 200, {"url": f"{self.url}/{name}", "name": name})
        if route == "validate":
            return _reply(h, 200, {})
        if route == "branch":
            self.branches.append(match["rev"])
            return _reply(h, 200, {})
        if route == "preupload":
            files = json.loads(body)["files"]
            answer = [
                {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False} for f in files
            ]
            return _reply(h, 200, {"files": answer, "commitOid": "0" * 40})
        # commit: a header line, then one line per file
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        header = next(x["value"] for x in lines if x["key"] == "header")
        for x in lines:
            if x["key"] == "file":
                self.files[x["value"]["path"]] = base64.b64decode(x["value"]["content"])
        pr = "create_pr=1" in urlsplit(h.path).query
        commit = {"repo": match["repo"], "revision": match["rev"], "header": header, "pr": pr}
        self.commits.append(commit)
        oid = "1" * 40
        if pr:
            return _reply(
                h,
                200,
                {
                    "commitUrl": f"{self.url}/{match['repo']}/commit/{oid}",
                    "commitOid": oid,
                    "pullRequestUrl": f"{self.url}/{match['repo']}/discussions/1",
                },
            )
        return _reply(
            h, 200, {"commitUrl": f"{self.url}/{match['repo']}/commit/{oid}", "commitOid": oid}
        )


def _read_body(h: BaseHTTPRequestHandler) -> bytes:
    if h.headers.get("transfer-encoding", "").lower() == "chunked":
        out = b""
        while True:
            size = int(h.rfile.readline().strip().split(b";")[0], 16)
            if size == 0:
                h.rfile.readline()
                return out
            out += h.rfile.read(size)
            h.rfile.readline()
    return h.rfile.read(int(h.headers.get("content-length") or 0))


def _reply(h: BaseHTTPRequestHandler, status: int, payload: dict) -> None:
    data = json.dumps(payload).encode()
    h.send_response(status)
    h.send_header("content-type", "application/json")
    h.send_header("content-length", str(len(data)))
    h.end_headers()
    h.wfile.write(data)
