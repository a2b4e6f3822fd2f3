"""A loopback Hugging Face hub for tests: the hub's URL layout and headers, a separate CDN origin
for LFS files, and switches for the failures a real download meets (cut connections, corrupted
bytes, gated repos, slow links). Nothing here touches the network beyond 127.0.0.1."""

import hashlib
import http.server
import json
import random
import socket
import ssl
import subprocess
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

LFS_SUFFIXES = (".safetensors", ".bin", ".torchscript", ".onnx", ".msgpack", ".h5")


def git_blob_id(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


def sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def make_self_signed_cert(directory) -> tuple[str, str]:
    """A certificate for 127.0.0.1/localhost, made with the openssl CLI (no Python crypto package)."""
    cert, key = f"{directory}/hub-cert.pem", f"{directory}/hub-key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", key, "-out", cert],
        check=True, capture_output=True)
    return cert, key


@dataclass
class Repo:
    repo_id: str
    files: dict  # path -> bytes
    tags: tuple = ()
    token: str | None = None  # gated: only this bearer token may read it
    renamed_from: str | None = None
    corrupt: set = field(default_factory=set)  # paths whose served bytes differ from the metadata

    def __post_init__(self):
        digest = hashlib.sha1(self.repo_id.encode())
        for path in sorted(self.files):
            digest.update(path.encode() + git_blob_id(self.files[path]).encode())
        self.commit = digest.hexdigest()

    def is_lfs(self, path):
        return path.endswith(LFS_SUFFIXES)

    def served_bytes(self, path):
        content = self.files[path]
        if path in self.corrupt:
            content = bytearray(content)
            content[len(content) // 2] ^= 0x5A
            content = bytes(content)
        return content

    def sibling(self, path):
        content = self.files[path]
        entry = {"rfilename": path}
        if self.is_lfs(path):
            pointer = (f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256(content)}\n"
                       f"size {len(content)}\n").encode()
            entry.update(blobId=git_blob_id(pointer), size=len(content),
                         lfs={"sha256": sha256(content), "size": len(content), "pointerSize": len(pointer)})
        else:
            entry.update(blobId=git_blob_id(content), size=len(content))
        return entry


class Faults:
    """Failure switches, shared by both servers and changeable while they run."""

    def __init__(self):
        self.lock = threading.Lock()
        self.cut_after = {}  # sha256 -> [bytes to send before dropping the connection, times left]
        self.bytes_per_second = None  # throttle CDN bodies
        self.api_blobs = True  # False: a mirror whose revision API omits sizes and hashes
        self.ignore_range = False
        self.stall_resumed = False  # requests with a Range header get headers but no body
        self.hold_blobs_until_clients = 0  # CDN answers wait until this many revision lookups arrived
        self.api_busy = 0  # the next this many revision lookups get 503 with Retry-After

    def take_cut(self, key):
        with self.lock:
            entry = self.cut_after.get(key)
            if not entry or entry[1] <= 0:
                return None
            entry[1] -= 1
            return entry[0]


class Emulator:
    def __init__(self, repos, tls=None):
        self.repos = {r.repo_id: r for r in repos}
        self.renames = {r.renamed_from: r.repo_id for r in repos if r.renamed_from}
        self.faults = Faults()
        self.log = []  # (server, method, path, headers dict)
        self.log_lock = threading.Lock()
        self.tls = tls
        self.hub = self._start("hub")
        self.cdn = self._start("cdn")

    def _start(self, role):
        emulator = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_HEAD(self):
                emulator._handle(role, self, head=True)

            def do_GET(self):
                emulator._handle(role, self, head=False)

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        if self.tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
            server.socket = context.wrap_socket(server.socket, server_side=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        return server

    def url(self, role="hub"):
        server = self.hub if role == "hub" else self.cdn
        scheme = "https" if self.tls else "http"
        return f"{scheme}://127.0.0.1:{server.server_address[1]}"

    def stop(self):
        for server in (self.hub, self.cdn):
            server.shutdown()
            server.server_close()

    def requests(self, role=None, method=None, path_part=None):
        with self.log_lock:
            return [e for e in self.log if (role is None or e[0] == role) and (method is None or e[1] == method)
                    and (path_part is None or path_part in e[2])]

    def clear_log(self):
        with self.log_lock:
            self.log.clear()

    # Routing

    def _handle(self, role, handler, head):
        headers = {k.lower(): v for k, v in handler.headers.items()}
        with self.log_lock:
            self.log.append((role, "HEAD" if head else "GET", handler.path, headers))
        try:
            if role == "cdn":
                return self._serve_blob(handler, head, headers)
            parsed = urllib.parse.urlsplit(handler.path)
            parts = parsed.path.split("/")
            if parsed.path.startswith("/api/models/"):
                # /api/models/{org}/{repo}/revision/{rev}
                return self._revision_api(handler, "/".join(parts[3:5]), parts[6:], parsed.query, headers)
            if len(parts) >= 6 and parts[3] == "resolve":
                return self._resolve(handler, head, "/".join(parts[1:3]), parts[4], "/".join(parts[5:]), headers)
            return self._error(handler, 404, "NotFound", "no such route", head)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass

    def _send(self, handler, status, headers, body=b"", head=False):
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        if "Content-Length" not in headers:
            handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Connection", "close")
        handler.end_headers()
        if not head and body:
            handler.wfile.write(body)
        handler.close_connection = True

    def _error(self, handler, status, code, message, head=False):
        body = json.dumps({"error": message}).encode()
        self._send(handler, status, {"X-Error-Code": code, "X-Error-Message": message,
                                     "Content-Type": "application/json"}, body, head)

    def _find_repo(self, handler, repo_id, headers, head, rest_of_path):
        """The repo, or None after answering: a rename redirect, 401 or 404 as the hub does."""
        if repo_id in self.renames:
            target = "/" + self.renames[repo_id] + rest_of_path
            self._send(handler, 307, {"Location": target}, head=head)
            return None
        repo = self.repos.get(repo_id)
        auth = headers.get("authorization", "")
        if repo is None:
            # Without a token the hub does not reveal whether a repo exists.
            if auth:
                self._error(handler, 404, "RepoNotFound", f"Repository {repo_id} not found", head)
            else:
                self._error(handler, 401, "RepoNotFound", "Invalid username or password.", head)
            return None
        if repo.token and auth != f"Bearer {repo.token}":
            self._error(handler, 401, "GatedRepo", f"Access to model {repo_id} is restricted.", head)
            return None
        return repo

    def _commit_for(self, repo, revision):
        if revision in ("main", repo.commit) or revision in repo.tags:
            return repo.commit
        return None

    def _revision_api(self, handler, repo_id, revision_parts, query, headers):
        with self.faults.lock:
            busy = self.faults.api_busy > 0
            self.faults.api_busy -= busy
        if busy:
            return self._send(handler, 503, {"Retry-After": "1", "X-Error-Message": "Service Unavailable"})
        revision = urllib.parse.unquote("/".join(revision_parts))
        rest = "/revision/" + "/".join(revision_parts) + ("?" + query if query else "")
        if repo_id in self.renames:
            self._send(handler, 307, {"Location": "/api/models/" + self.renames[repo_id] + rest})
            return
        repo = self._find_repo(handler, repo_id, headers, False, rest)
        if repo is None:
            return
        commit = self._commit_for(repo, revision)
        if commit is None:
            return self._error(handler, 404, "RevisionNotFound", f"Invalid rev id: {revision}")
        blobs = "blobs=true" in query and self.faults.api_blobs
        siblings = [repo.sibling(p) if blobs else {"rfilename": p} for p in sorted(repo.files)]
        body = json.dumps({"_id": "0" * 24, "id": repo.repo_id, "modelId": repo.repo_id, "sha": commit,
                           "private": bool(repo.token), "gated": "manual" if repo.token else False,
                           "siblings": siblings}).encode()
        self._send(handler, 200, {"Content-Type": "application/json"}, body)

    def _resolve(self, handler, head, repo_id, revision, path, headers):
        revision = urllib.parse.unquote(revision)
        path = urllib.parse.unquote(path)
        repo = self._find_repo(handler, repo_id, headers, head,
                               "/resolve/" + urllib.parse.quote(revision, safe="") + "/" + path)
        if repo is None:
            return
        commit = self._commit_for(repo, revision)
        if commit is None:
            return self._error(handler, 404, "RevisionNotFound", f"Invalid rev id: {revision}", head)
        if path not in repo.files:
            return self._error(handler, 404, "EntryNotFound", f"{path} does not exist on {revision}", head)
        content = repo.files[path]
        base = {"X-Repo-Commit": commit, "Accept-Ranges": "bytes"}
        if repo.is_lfs(path):
            digest = sha256(content)
            base.update({"ETag": f'"{digest}"', "X-Linked-Etag": f'"{digest}"', "X-Linked-Size": str(len(content)),
                         "Location": f"{self.url('cdn')}/blobs/{repo.repo_id}/{digest}?path={urllib.parse.quote(path)}"})
            return self._send(handler, 302, base, head=head)
        base["ETag"] = f'"{git_blob_id(content)}"'
        return self._send_content(handler, head, repo.served_bytes(path), base, headers)

    def _serve_blob(self, handler, head, headers):
        parsed = urllib.parse.urlsplit(handler.path)
        parts = parsed.path.split("/")  # /blobs/{org}/{repo}/{sha256}
        repo = self.repos.get("/".join(parts[2:4]))
        path = urllib.parse.parse_qs(parsed.query).get("path", [""])[0]
        if repo is None or path not in repo.files or sha256(repo.files[path]) != parts[4]:
            return self._error(handler, 404, "NotFound", "no such blob", head)
        return self._send_content(handler, head, repo.served_bytes(path), {"ETag": f'"{parts[4]}"'},
                                  headers, cut_key=parts[4])

    def _send_content(self, handler, head, content, base, headers, cut_key=None):
        start = 0
        status = 200
        range_header = headers.get("range")
        if range_header and not self.faults.ignore_range:
            start = int(range_header.removeprefix("bytes=").split("-")[0])
            if start >= len(content):
                return self._send(handler, 416, {**base, "Content-Range": f"bytes */{len(content)}"}, head=head)
            status = 206
            base = {**base, "Content-Range": f"bytes {start}-{len(content) - 1}/{len(content)}"}
        body = content[start:]
        if cut_key and self.faults.hold_blobs_until_clients:
            deadline = time.monotonic() + 60
            while (len(self.requests("hub", "GET", "/api/models/")) < self.faults.hold_blobs_until_clients
                   and time.monotonic() < deadline):
                time.sleep(0.05)
            time.sleep(1.0)  # the other clients are now through their small files, queued on the lock
        handler.send_response(status)
        for name, value in {**base, "Content-Length": str(len(body)), "Connection": "close"}.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.close_connection = True
        if head:
            return
        cut = self.faults.take_cut(cut_key) if cut_key else None
        if cut_key and range_header and self.faults.stall_resumed:
            cut = 0
        if cut is not None:
            body = body[:cut]
        chunk = 64 * 1024
        for offset in range(0, len(body), chunk):
            handler.wfile.write(body[offset:offset + chunk])
            if self.faults.bytes_per_second:
                time.sleep(chunk / self.faults.bytes_per_second)
        if cut is not None:
            handler.wfile.flush()
            handler.connection.shutdown(socket.SHUT_RDWR)


def random_bytes(size, seed):
    return random.Random(seed).randbytes(size)
