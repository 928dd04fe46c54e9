#!/usr/bin/env python3
"""A stand-in for one ciliate-agent's API socket, for tests/observe/run-suite.sh.

usage: fake_agent.py SOCKET RESPONSE.json STREAM.jsonl REQUESTS.log

Answers every connection's first request line with RESPONSE.json (one line). When the
request asks to follow, it then writes the lines of STREAM.jsonl as they are (one every
50 ms) and keeps the connection open until the client closes it. Every request line is
appended to REQUESTS.log. Bounded: it exits after 60 s, on SIGTERM, or when SOCKET is removed.
"""
import os
import signal
import socket
import sys
import time

LIFETIME_S = 60


def serve(conn, response, stream, log):
    conn.settimeout(10)
    buf = b""
    while b"\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            return
        buf += chunk
    line = buf.split(b"\n", 1)[0]
    with open(log, "ab") as f:
        f.write(line + b"\n")
    conn.sendall(response.rstrip(b"\n") + b"\n")
    if b'"follow":true' not in line:
        return
    for s in stream:
        time.sleep(0.05)
        conn.sendall(s.rstrip(b"\n") + b"\n")
    conn.settimeout(0.2)
    end = time.time() + 20
    while time.time() < end:
        try:
            if not conn.recv(4096):
                return
        except socket.timeout:
            continue
        except OSError:
            return


def main():
    path, resp_file, stream_file, log = sys.argv[1:5]
    with open(resp_file, "rb") as f:
        response = f.read()
    with open(stream_file, "rb") as f:
        stream = [l for l in f.read().split(b"\n") if l.strip()]
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(8)
    srv.settimeout(0.5)
    deadline = time.time() + LIFETIME_S
    while time.time() < deadline and os.path.exists(path):
        try:
            conn, _ = srv.accept()
        except socket.timeout:
            continue
        with conn:
            try:
                serve(conn, response, stream, log)
            except OSError:
                pass
    srv.close()


if __name__ == "__main__":
    main()
