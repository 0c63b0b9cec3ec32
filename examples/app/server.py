#!/usr/bin/env python3
"""The demo app skiff deploys: answers GET / with its version and GET /health with 200."""
import argparse
import http.server
import os


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            body = b"ok\n"
        else:
            version = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "VERSION")).read()
            body = ("hello from skiff demo " + version.strip() + "\n").encode()
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
