#!/usr/bin/env python3
"""The demo app skiff deploys: answers GET / with its version and GET /health with 200."""
import argparse
import http.server
import os

try:  # installed by the app's venv build (see [[apps.demo.builds]] in hosts.toml); optional elsewhere
    import greeting
except ImportError:
    greeting = None


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            body = b"ok\n"
        else:
            version = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "VERSION")).read()
            extra = " (greeting %s)" % greeting.__version__ if greeting else ""
            body = ("hello from skiff demo " + version.strip() + extra + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, default=8088)
    a = p.parse_args()
    http.server.ThreadingHTTPServer(("127.0.0.1", a.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
