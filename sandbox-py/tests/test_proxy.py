"""Egress through the host-side proxy, driven from Python: an allowed name
reaches a loopback upstream, anything else is refused and on the record."""
import http.server
import threading

import pytest

import stockade

FETCH = """
import sys, urllib.request
try:
    print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode())
except Exception as e:
    print("refused:", e)
"""


@pytest.fixture
def upstream():
    seen = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            body = b"hello from upstream"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    yield server.server_address[1], seen
    server.shutdown()


def test_allowed_name_goes_through_and_others_are_denied(upstream):
    port, seen = upstream
    sb = stockade.Sandbox(
        allow_domain=[f"allowed.test:{port}"],  # other ports than 80/443 are named
        resolve=["allowed.test:127.0.0.1"],
        allow_private=["127.0.0.1/32"],
    )
    r = sb.run(["python3", "-c", FETCH, f"http://allowed.test:{port}/ok"])
    assert r.stdout == b"hello from upstream\n", r.stderr
    assert seen == ["/ok"]
    allowed = [e for e in r.events if e["host"] == "allowed.test" and e["decision"] == "allowed"]
    assert allowed and allowed[0]["port"] == port

    r = sb.run(["python3", "-c", FETCH, f"http://evil.example:{port}/auth.py"])
    assert r.stdout.startswith(b"refused:"), r.stdout
    assert seen == ["/ok"]  # nothing reached the upstream
    denied = [e for e in r.events if e["host"] == "evil.example"]
    assert denied and denied[0]["decision"] == "denied"
    assert denied[0]["reason"] == "not-allowed"


def test_loopback_of_the_host_is_not_reachable_without_the_proxy(upstream):
    port, seen = upstream
    r = stockade.Sandbox(loopback_tcp=True).run(
        ["python3", "-c", FETCH.replace("urllib.request.urlopen", "urllib.request.build_opener(urllib.request.ProxyHandler({})).open"),
         f"http://127.0.0.1:{port}/direct"]
    )
    assert r.stdout.startswith(b"refused:") and b"Connection refused" in r.stdout
    assert seen == []
