"""A stand-in for a tracking server that misbehaves, for tests of biopipe's HTTP client.

    stub_http.py MODE PORTFILE LOGFILE [CERT KEY]

Listens on 127.0.0.1 (a free port, written to PORTFILE) and appends one line per request to
LOGFILE: "<method> <path> <Authorization header or ->". MODE: "hang" never answers (a server
that accepted the connection and stalls), "503" answers every request with HTTP 503 and an MLflow
error body, "404" with RESOURCE_DOES_NOT_EXIST. With CERT and KEY (PEM files) it speaks HTTPS.
Exits after 120 s whatever happens.
"""
import http.server
import json
import os
import ssl
import sys
import threading
import time

mode, portfile, logfile = sys.argv[1:4]
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    def handle_any(self):
        with lock, open(logfile, "a") as f:
            f.write("%s %s %s\n" % (self.command, self.path,
                                    self.headers.get("Authorization", "-")))
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        if mode == "hang":
            time.sleep(60)
            return
        code, err = (503, "TEMPORARILY_UNAVAILABLE") if mode == "503" else \
            (404, "RESOURCE_DOES_NOT_EXIST")
        body = json.dumps({"error_code": err, "message": "stub says no"}).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = do_PUT = handle_any

    def log_message(self, *args):
        pass


srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
srv.daemon_threads = True
if len(sys.argv) > 5:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(sys.argv[4], sys.argv[5])
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
with open(portfile + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(portfile + ".tmp", portfile)
threading.Timer(120, lambda: os._exit(0)).start()
srv.serve_forever()
