#!/usr/bin/env python3
"""Round-trip latency of small messages through an echo service, printed as JSON.

Usage: interactive_latency.py HOST PORT COUNT INTERVAL_MS
Sends COUNT 64-byte messages, one every INTERVAL_MS, each after the previous echo arrived, and
prints {"count", "p50_ms", "p90_ms", "p99_ms", "max_ms"}. Exits 1 if an echo differs or times out."""
import json
import socket
import sys
import time

host, port, count, interval = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
connection = socket.create_connection((host, port), timeout=10)
connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
samples = []
for index in range(count):
    message = (b"%08d" % index) * 8
    started = time.perf_counter()
    connection.sendall(message)
    received = b""
    while len(received) < len(message):
        chunk = connection.recv(len(message) - len(received))
        if not chunk:
            sys.exit("echo connection closed")
        received += chunk
    samples.append((time.perf_counter() - started) * 1000)
    if received != message:
        sys.exit("echo differs")
    time.sleep(interval / 1000)
samples.sort()
pick = lambda fraction: round(samples[min(len(samples) - 1, int(fraction * len(samples)))], 3)
print(json.dumps({"count": count, "p50_ms": pick(0.5), "p90_ms": pick(0.9), "p99_ms": pick(0.99),
                  "max_ms": round(samples[-1], 3)}))
