#!/usr/bin/env python3
"""tether's own adversary: a small tether client (standard library only) that attacks a server.

It speaks tether's wire format (docs/PROTOCOL.md): TLS 1.3 with certificate verification off, or the
`--plain-insecure` test transport with --plain; then Hello, and frames. Every attack is bounded in
count and time, stops by itself, and sends traffic only to 127.0.0.0/8. Attackers bind to
127.0.0.2 and up (--source, --sources), the legitimate session to 127.0.0.1, so that per-source
limits can be seen to work.

Usage: adversary.py --server 127.0.0.1:PORT [--plain] [--source A] [--sources N] ATTACK [options]
Each attack prints one JSON line of figures on standard output (what it sent, what the server did).

Attacks (hardening_test.sh runs each beside a legitimate session and prints its figures):
  crash             Hello, then Ack{stream 0, received_offset 2^62-1}, then Close on stream 0.
  crash-stream-header  a stream opened and finished (or released) before its tunnel header.
  stream-flood      one session opens --streams streams (open flag, no data), then disconnects.
  ping-flood        Pings as fast as the server takes them, never reading the Pongs.
  reset-data-flood  opens a stream, resets it, then sends StreamData frames on it, never reading.
  pending-flood     connections that never finish their handshake: TCP without a TLS handshake,
                    TLS without a first frame, and a Hello header claiming a 1 MiB payload whose
                    bytes then arrive slowly.
  abandon           Hello then disconnect, as fast as possible (each session is left to linger).
  slow-target       one session opens --streams streams to a local sink that never reads and sends
                    on each as much as flow control allows.
  no-ack-download   sessions open streams to a local source that writes without end, read what
                    the server sends and never acknowledge it.
  legit             a well-behaved session: answers the server's Pings, pings the server every
                    --ping-ms, and writes a JSON report (round-trip times, whether it was ever
                    suspended: the connection lost, or silent past the heartbeat budget).
"""
import argparse
import collections
import ipaddress
import json
import os
import resource
import select
import signal
import socket
import ssl
import struct
import sys
import threading
import time

MAX_VARINT = (1 << 62) - 1
CLOSED_STREAM_ACK = MAX_VARINT  # "I have released this stream"

HELLO, WELCOME, RESUME, RESUME_ACCEPT, REFUSE, STATELESS_RESET = 0x01, 0x02, 0x03, 0x04, 0x05, 0x06
PING, PONG, ACK, STREAM, ABORT, FAST_CLOSE, RESET_STREAM, CLOSE = (
    0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E)
OPEN_FLAG, FIN_FLAG = 0x01, 0x02
CAPABILITIES = 0x07  # resume, fast close, stateless reset
REASON_SHUTDOWN = 11
INITIAL_STREAM_WINDOW = 256 << 10
DATA_FRAME = 16 << 10
# Attackers propose the longest heartbeat the server allows (it clamps to 300 s x 20), so that
# within an attack's few seconds the server never times them out for silence.
ATTACKER_HEARTBEAT_MS, ATTACKER_MISSING = 300_000, 20


# ---- wire format -------------------------------------------------------------------------------

def varint(value):
    """QUIC varint (RFC 9000 section 16), as src/wire/byte_writer.hpp writes it."""
    if value < 1 << 6:
        return bytes([value])
    if value < 1 << 14:
        return struct.pack(">H", value | 0x4000)
    if value < 1 << 30:
        return struct.pack(">I", value | 0x80000000)
    if value <= MAX_VARINT:
        return struct.pack(">Q", value | 0xC000000000000000)
    raise ValueError("varint out of range")


def read_varint(buffer, position):
    """(value, next position), or None when the buffer ends inside the varint."""
    if position >= len(buffer):
        return None
    first = buffer[position]
    length = 1 << (first >> 6)
    if position + length > len(buffer):
        return None
    value = first & 0x3F
    for byte in buffer[position + 1:position + length]:
        value = (value << 8) | byte
    return value, position + length


def frame(frame_type, payload=b""):
    return bytes([frame_type]) + varint(len(payload)) + payload


def hello(heartbeat_ms, missing, capabilities=CAPABILITIES, version=1):
    """A Hello that does not authenticate: an empty mechanism and no initial response (the server
    under attack runs with --auth none)."""
    return frame(HELLO, varint(version) + varint(capabilities) + varint(heartbeat_ms) + varint(missing)
                 + varint(0) + b"\x00")


def ping(sequence):
    return frame(PING, varint(sequence))


def pong(sequence):
    return frame(PONG, varint(sequence))


def ack(entries):
    """entries: (stream_id, received_offset, window_limit) triples."""
    payload = varint(len(entries)) + b"".join(
        varint(stream) + varint(received) + varint(window) for stream, received, window in entries)
    return frame(ACK, payload)


def stream_data(stream, offset, data=b"", is_open=False, fin=False, priority=0):
    flags = (OPEN_FLAG if is_open else 0) | (FIN_FLAG if fin else 0)
    fields = varint(stream) + varint(offset) + bytes([flags]) + (bytes([priority]) if is_open else b"")
    return frame(STREAM, fields + data)


def reset_stream(stream, error_code=0):
    """A control-stream message (it travels as data of stream 0)."""
    return frame(RESET_STREAM, varint(stream) + varint(error_code))


def close_message(reason=REASON_SHUTDOWN):
    return frame(CLOSE, bytes([reason]))


def tunnel_connect(host, port):
    """The tunnel's stream header (docs/PROTOCOL.md): version 1, kind 1 (connect), host, port."""
    name = host.encode()
    return struct.pack(">BBH", 1, 1, len(name)) + name + struct.pack(">H", port)


def split_frames(buffer):
    """Complete frames at the start of `buffer`: ([(type, payload), ...], bytes consumed)."""
    frames, position = [], 0
    while True:
        if position >= len(buffer):
            break
        length = read_varint(buffer, position + 1)
        if length is None:
            break
        size, start = length
        if start + size > len(buffer):
            break
        frames.append((buffer[position], bytes(buffer[start:start + size])))
        position = start + size
    return frames, position


def parse_stream(payload):
    """StreamData payload -> (stream, offset, flags, data)."""
    stream, position = read_varint(payload, 0)
    offset, position = read_varint(payload, position)
    flags = payload[position]
    position += 1
    if flags & OPEN_FLAG:
        position += 1
    return stream, offset, flags, payload[position:]


def parse_ack(payload):
    count, position = read_varint(payload, 0)
    entries = []
    for _ in range(count):
        stream, position = read_varint(payload, position)
        received, position = read_varint(payload, position)
        window, position = read_varint(payload, position)
        entries.append((stream, received, window))
    return entries


# ---- transport ---------------------------------------------------------------------------------

WOULD_BLOCK = (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError, InterruptedError)


class Closed(Exception):
    """The server closed the connection (or reset it)."""


def tls_context():
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the attacker does not care who the server is
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    return context


class Connection:
    """One transport connection to the server, non-blocking once its handshake is done. Writes are
    queued and flushed as the socket takes them (a TLS write that would block is retried with the
    same bytes, as OpenSSL requires); reads return what arrived."""

    def __init__(self, options, source, handshake=True, receive_buffer=None, timeout=5.0):
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            if receive_buffer:
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            raw.bind((source, 0))
            raw.settimeout(timeout)
            raw.connect(options.server)
        except OSError:
            raw.close()
            raise
        self.socket = raw
        self.tls = not options.plain
        self.options = options
        self.pending = collections.deque()
        self.current = None
        self.bytes_sent = 0
        self.bytes_received = 0
        self.closed = False
        if handshake:
            self.handshake()

    def handshake(self):
        try:
            if self.tls:
                self.socket = self.options.tls_context.wrap_socket(self.socket)
            else:  # the --plain-insecure transport: a 32-byte nonce each way, in the clear
                self.socket.sendall(os.urandom(32))
                nonce = b""
                while len(nonce) < 32:
                    chunk = self.socket.recv(32 - len(nonce))
                    if not chunk:
                        raise Closed("closed during the plain handshake")
                    nonce += chunk
        except (OSError, ssl.SSLError):
            self.close()
            raise
        self.socket.setblocking(False)

    def queue(self, data):
        if data:
            self.pending.append(data)

    def queued(self):
        return self.current is not None or bool(self.pending)

    def flush(self):
        """Writes what the socket takes now; True when nothing is left queued."""
        while True:
            if self.current is None:
                if not self.pending:
                    return True
                # Coalesce small frames into one write (one TLS record).
                parts, size = [], 0
                while self.pending and size < 64 << 10:
                    part = self.pending.popleft()
                    parts.append(part)
                    size += len(part)
                self.current = b"".join(parts)
            try:
                sent = self.socket.send(self.current)
            except WOULD_BLOCK:
                return False
            except (OSError, ssl.SSLError) as error:
                raise Closed(str(error)) from error
            self.bytes_sent += sent
            self.current = self.current[sent:] if sent < len(self.current) else None

    def receive(self):
        """The bytes that arrived (b"" when none); raises Closed at the end of the stream."""
        chunks = []
        while True:
            try:
                chunk = self.socket.recv(256 << 10)
            except WOULD_BLOCK:
                break
            except (OSError, ssl.SSLError) as error:
                raise Closed(str(error)) from error
            if not chunk:
                raise Closed("end of stream")
            chunks.append(chunk)
            self.bytes_received += len(chunk)
            if not (self.tls and self.socket.pending()):
                break
        return b"".join(chunks)

    def wait(self, timeout, readable=True):
        """Until the socket is readable (if asked), writable while writes are queued, or timeout."""
        if readable and self.tls and self.socket.pending():
            return
        select.select([self.socket] if readable else [], [self.socket] if self.queued() else [], [],
                      max(0.0, timeout))

    def send_all(self, data, deadline):
        """Queues `data` and flushes it by `deadline`; False if the server did not take it in time."""
        self.queue(data)
        while not self.flush():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.wait(min(remaining, 0.1), readable=False)
        return True

    def close(self):
        if not self.closed:
            self.closed = True
            try:
                self.socket.close()
            except OSError:
                pass


class Session:
    """A client session on one connection: Hello, the Welcome, then frames. It keeps what a client
    needs to send correct frames: its control-stream offset, each stream's offset and window."""

    def __init__(self, connection, heartbeat_ms=ATTACKER_HEARTBEAT_MS, missing=ATTACKER_MISSING,
                 answer_pings=True, acknowledge=True, timeout=5.0):
        self.connection = connection
        self.answer_pings = answer_pings
        self.acknowledge = acknowledge
        self.inbound = bytearray()
        self.control_offset = 0
        self.control_inbound = bytearray()
        self.streams = {}  # id -> {"sent", "window", "received", "reset"}
        self.next_stream = 1
        self.session_id = None
        self.pongs = []  # (sequence, arrival time)
        self.server_pings = []  # arrival times
        self.last_inbound = time.monotonic()
        self.ended = None  # why the server ended the session, when it did
        self.resets_received = 0
        self.stream_bytes_received = 0
        connection.queue(hello(heartbeat_ms, missing))
        deadline = time.monotonic() + timeout
        while self.session_id is None:
            if self.ended:
                raise Closed(self.ended)
            if time.monotonic() > deadline:
                raise Closed("no Welcome within %.0f s" % timeout)
            self.poll(0.05)
        self.heartbeat_ms = self.welcome_heartbeat_ms

    def poll(self, timeout):
        """Flushes, waits up to `timeout` for bytes, handles the frames that arrived."""
        self.connection.flush()
        self.connection.wait(timeout)
        data = self.connection.receive()
        if data:
            self.last_inbound = time.monotonic()
            self.inbound += data
            frames, consumed = split_frames(self.inbound)
            del self.inbound[:consumed]
            for frame_type, payload in frames:
                self.handle(frame_type, payload)
        self.connection.flush()

    def handle(self, frame_type, payload):
        now = time.monotonic()
        if frame_type == WELCOME:
            position = read_varint(payload, 0)[1]  # version
            position = read_varint(payload, position)[1]  # capabilities
            self.session_id = payload[position:position + 16].hex()
            self.welcome_heartbeat_ms = read_varint(payload, position + 16)[0]
        elif frame_type == REFUSE:
            self.ended = "refused (reason %d)" % payload[0]
        elif frame_type == ABORT:
            self.ended = "aborted (reason %d)" % payload[0]
        elif frame_type == PING:
            self.server_pings.append(now)
            if self.answer_pings:
                self.connection.queue(pong(read_varint(payload, 0)[0]))
        elif frame_type == PONG:
            self.pongs.append((read_varint(payload, 0)[0], now))
        elif frame_type == ACK:
            for stream, received, window in parse_ack(payload):
                state = self.streams.get(stream)
                if state is not None and window > state["window"]:
                    state["window"] = window
        elif frame_type == STREAM:
            stream, offset, flags, data = parse_stream(payload)
            self.stream_bytes_received += len(data)
            if stream == 0:
                self.control_inbound += data
                messages, consumed = split_frames(self.control_inbound)
                del self.control_inbound[:consumed]
                for message_type, message in messages:
                    if message_type == RESET_STREAM:
                        reset = read_varint(message, 0)[0]
                        self.resets_received += 1
                        if reset in self.streams:
                            self.streams[reset]["reset"] = True
                    elif message_type == CLOSE:
                        self.ended = "closed by the server (reason %d)" % message[0]
            state = self.streams.setdefault(stream, {"sent": 0, "window": 0, "received": 0,
                                                     "reset": False})
            state["received"] = max(state["received"], offset + len(data) + (1 if flags & FIN_FLAG else 0))
            if self.acknowledge:
                self.connection.queue(ack([(stream, state["received"],
                                            state["received"] + INITIAL_STREAM_WINDOW)]))

    def open_stream(self, first_bytes=b"", fin=False):
        stream = self.next_stream
        self.next_stream += 2
        self.streams[stream] = {"sent": len(first_bytes), "window": INITIAL_STREAM_WINDOW,
                                "received": 0, "reset": False}
        self.connection.queue(stream_data(stream, 0, first_bytes, is_open=True, fin=fin))
        return stream

    def control(self, message):
        self.connection.queue(stream_data(0, self.control_offset, message))
        self.control_offset += len(message)

    def send_within_window(self, stream, limit):
        """Queues data on `stream` up to its window (at most `limit` bytes); returns the count."""
        state = self.streams[stream]
        room = min(limit, state["window"] - state["sent"])
        sent = 0
        while room - sent > 0:
            size = min(DATA_FRAME, room - sent)
            self.connection.queue(stream_data(stream, state["sent"], bytes(size)))
            state["sent"] += size
            sent += size
        return sent


# ---- helpers -----------------------------------------------------------------------------------

class Sources:
    """Source addresses for attack connections: --sources of them from --source, in turn."""

    def __init__(self, options):
        first = ipaddress.IPv4Address(options.source)
        self.addresses = [str(first + index) for index in range(options.sources)]
        self.next = 0
        self.lock = threading.Lock()

    def take(self):
        with self.lock:
            address = self.addresses[self.next % len(self.addresses)]
            self.next += 1
            return address


def raise_descriptor_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def connect_session(options, source, **session_options):
    connection = Connection(options, source, receive_buffer=session_options.pop("receive_buffer", None))
    try:
        return Session(connection, **session_options)
    except Closed:
        connection.close()
        raise


def drain_until(session, deadline):
    """Polls `session` until `deadline` or the server ends it; returns why it ended (or None)."""
    while time.monotonic() < deadline:
        try:
            session.poll(min(0.05, max(0.0, deadline - time.monotonic())))
        except Closed as closed:
            return "connection closed (%s)" % closed
        if session.ended:
            return session.ended
    return None


def flood(connection, unit, deadline, max_bytes):
    """Writes `unit` over and over until `deadline` or `max_bytes`, never reading."""
    sent = 0
    while time.monotonic() < deadline and sent < max_bytes:
        connection.queue(unit)
        sent += len(unit)
        while not connection.flush():
            if time.monotonic() >= deadline:
                return sent
            connection.wait(0.05, readable=False)
    return sent


class Listener(threading.Thread):
    """A local target for the tunnel's streams: a sink that accepts and never reads (small receive
    buffer), or a source that writes zeros without end. Runs until stopped."""

    def __init__(self, port, mode):
        super().__init__(daemon=True)
        self.mode = mode
        self.server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if mode == "sink":
            self.server.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.server.bind(("127.0.0.1", port))
        self.server.listen(1024)
        self.server.settimeout(0.1)
        self.accepted = []
        self.stopping = False
        self.bytes_written = 0

    def run(self):
        block = bytes(64 << 10)
        while not self.stopping:
            try:
                peer, _ = self.server.accept()
                peer.setblocking(False)
                self.accepted.append(peer)
            except socket.timeout:
                pass
            except OSError:
                break
            if self.mode == "source":
                for _ in range(8):
                    for peer in self.accepted:
                        try:
                            self.bytes_written += peer.send(block)
                        except (BlockingIOError, OSError):
                            pass

    def stop(self):
        self.stopping = True
        self.join(2)
        for peer in self.accepted:
            peer.close()
        self.server.close()


# ---- attacks -----------------------------------------------------------------------------------

# The 13 + 8 bytes of the remote crash, after a Hello: Ack{stream 0, received_offset 2^62-1,
# window 0}, then StreamData{stream 0, offset 0} carrying Close{shutdown}.
CRASH_ACK = bytes.fromhex("090b0100ffffffffffffffff00")
CRASH_CLOSE = bytes.fromhex("0a060000000e010b")


def attack_crash(options, sources):
    return crash_variants(options, sources, {"ack-released-control-then-close": CRASH_ACK + CRASH_CLOSE})


def attack_crash_stream_header(options, sources):
    # A stream opened and finished before its tunnel header: with no byte at all, with two of the
    # header's bytes, and opened and then released by the client (Ack 2^62-1) before the header.
    # Then a whole header and the FIN at once, for an allowed target (--target-port, where nobody
    # listens: refused) and for one off the allow list.
    variants = {
        "stream-finished-before-header": stream_data(1, 0, b"", is_open=True, fin=True),
        "stream-finished-inside-header": stream_data(1, 0, b"\x01\x01", is_open=True, fin=True),
        "stream-released-before-header": stream_data(1, 0, b"", is_open=True, fin=True)
        + ack([(1, CLOSED_STREAM_ACK, 0)]),
        "stream-finished-with-header-off-list": stream_data(
            1, 0, tunnel_connect("127.0.0.1", 1), is_open=True, fin=True),
    }
    if options.target_port:
        variants["stream-finished-with-header-allowed"] = stream_data(
            1, 0, tunnel_connect("127.0.0.1", options.target_port), is_open=True, fin=True)
    return crash_variants(options, sources, variants)


def crash_variants(options, sources, variants):
    """Each variant in a session of its own, after the Hello; then the server's reaction."""
    results = {}
    for name, payload in variants.items():
        if options.variant and name != options.variant:
            continue
        try:
            session = connect_session(options, sources.take())
        except (OSError, Closed) as error:
            results[name] = "could not start a session: %s" % error
            continue
        session.connection.queue(payload)
        outcome = drain_until(session, time.monotonic() + options.seconds)
        results[name] = outcome or "session still open"
        session.connection.close()
    return {"variants": results}


def attack_stream_flood(options, sources):
    opened = 0
    for _ in range(options.sessions):
        session = connect_session(options, sources.take())
        batch = [stream_data(2 * index + 1, 0, b"", is_open=True) for index in range(options.streams)]
        for start in range(0, len(batch), 256):
            session.connection.queue(b"".join(batch[start:start + 256]))
            session.poll(0)
        session.connection.send_all(b"", time.monotonic() + options.seconds)
        opened += options.streams
        # Give the server a moment to take every frame before the connection goes.
        drain_until(session, time.monotonic() + 0.5)
        session.connection.close()
    return {"sessions": options.sessions, "streams_opened": opened}


def attack_ping_flood(options, sources):
    session = connect_session(options, sources.take(), receive_buffer=4096, answer_pings=False)
    # 8-byte sequences: each 10-byte Ping costs the server a 10-byte Pong.
    unit = b"".join(ping((1 << 62) - 1 - sequence) for sequence in range(10_000))
    sent = flood(session.connection, unit, time.monotonic() + options.seconds, options.max_bytes)
    session.connection.close()
    return {"ping_bytes_sent": sent, "pings_sent": sent // 10}


def attack_reset_data_flood(options, sources):
    session = connect_session(options, sources.take(), receive_buffer=4096, answer_pings=False,
                              acknowledge=False)
    stream = session.open_stream(b"x")
    session.control(reset_stream(stream))
    unit = b"".join(stream_data(stream, 1, b"") for _ in range(10_000))
    sent = flood(session.connection, unit, time.monotonic() + options.seconds, options.max_bytes)
    session.connection.close()
    return {"stream_bytes_sent": sent, "frames_on_reset_stream": sent // 5}


def attack_pending_flood(options, sources):
    raise_descriptor_limit()
    deadline = time.monotonic() + options.seconds
    connections = {"tcp-silent": [], "tls-silent": [], "slow-hello": []}
    failures = collections.Counter()
    plan = ([("tcp-silent", False)] * options.silent + [("tls-silent", True)] * options.silent +
            [("slow-hello", True)] * options.slow)
    for kind, handshake in plan:
        if time.monotonic() >= deadline:
            break
        try:
            connection = Connection(options, sources.take(), handshake=handshake, timeout=2.0)
        except (OSError, ssl.SSLError, Closed) as error:
            failures[type(error).__name__] += 1
            continue
        if kind == "slow-hello":
            # Type, then a length of exactly 1 MiB (the default limit) in a 4-byte varint.
            connection.queue(bytes([HELLO]) + varint(1 << 20))
            connection.flush()
        connections[kind].append(connection)
    # The claimed payload, less its last byte, spread evenly over the attack's remaining time (all
    # of it sent by nine tenths of that time), so that every connection stays incomplete.
    slow = connections["slow-hello"]
    total = (1 << 20) - 1
    start, span = time.monotonic(), max(0.1, 0.9 * (deadline - time.monotonic()))
    sent_payload = {id(connection): 0 for connection in slow}
    peak_held = sum(len(held) for held in connections.values())
    while time.monotonic() < deadline:
        due = min(total, int(total * (time.monotonic() - start) / span))
        for connection in list(slow):
            size = due - sent_payload[id(connection)]
            if size <= 0:
                continue
            connection.queue(bytes(size))
            sent_payload[id(connection)] += size
            try:
                connection.flush()
            except Closed:
                slow.remove(connection)
        time.sleep(0.1)
    # Connections the server dropped (a timeout, a cap) are closed on its side by now.
    alive = 0
    for held in connections.values():
        for connection in held:
            try:
                connection.receive()
                alive += 1
            except Closed:
                pass
            except (OSError, ssl.SSLError):
                pass
            connection.close()
    return {"connections_opened": {kind: len(held) for kind, held in connections.items()},
            "peak_held": peak_held, "still_open_at_end": alive,
            "slow_hello_payload_bytes": sum(sent_payload.values()), "connect_failures": dict(failures)}


def attack_abandon(options, sources):
    raise_descriptor_limit()
    deadline = time.monotonic() + options.seconds
    counts = collections.Counter()
    lock = threading.Lock()
    unit = hello(ATTACKER_HEARTBEAT_MS, ATTACKER_MISSING)

    def worker():
        while time.monotonic() < deadline:
            with lock:
                if counts["sessions_abandoned"] + counts["failures"] >= options.count:
                    return
            try:
                connection = Connection(options, sources.take(), timeout=2.0)
                connection.send_all(unit, time.monotonic() + 1)
                connection.close()
                outcome = "sessions_abandoned"
            except (OSError, ssl.SSLError, Closed):
                outcome = "failures"
                time.sleep(0.01)
            with lock:
                counts[outcome] += 1

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(options.threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return dict(counts)


def attack_slow_target(options, sources):
    sink = Listener(options.target_port, "sink")
    sink.start()
    deadline = time.monotonic() + options.seconds
    try:
        session = connect_session(options, sources.take())
        header = tunnel_connect("127.0.0.1", options.target_port)
        streams = [session.open_stream(header) for _ in range(options.streams)]
        sent = 0
        ended = None
        while time.monotonic() < deadline and sent < options.max_bytes and not ended:
            for stream in streams:
                if not session.streams[stream]["reset"] and not session.connection.queued():
                    sent += session.send_within_window(stream, DATA_FRAME * 4)
                    session.connection.flush()
            try:
                session.poll(0.01)
            except Closed as closed:
                ended = "connection closed (%s)" % closed
            ended = ended or session.ended
        reset = sum(1 for stream in streams if session.streams[stream]["reset"])
        session.connection.close()
        return {"streams": len(streams), "stream_bytes_sent": sent, "streams_reset_by_server": reset,
                "sink_connections": len(sink.accepted), "ended": ended}
    finally:
        sink.stop()


def attack_no_ack_download(options, sources):
    source = Listener(options.target_port, "source")
    source.start()
    deadline = time.monotonic() + options.seconds
    sessions = []
    try:
        header = tunnel_connect("127.0.0.1", options.target_port)
        for _ in range(options.sessions):
            session = connect_session(options, sources.take(), acknowledge=False)
            for _ in range(options.streams):
                session.open_stream(header)
            sessions.append(session)
        ended = []
        while time.monotonic() < deadline and sessions:
            for session in list(sessions):
                try:
                    session.poll(0.005)
                except Closed as closed:
                    ended.append("connection closed (%s)" % closed)
                    sessions.remove(session)
                    continue
                if session.ended:
                    ended.append(session.ended)
                    sessions.remove(session)
        received = sum(session.stream_bytes_received for session in sessions)
        return {"sessions": options.sessions, "streams_per_session": options.streams,
                "stream_bytes_received_unacknowledged": received,
                "source_bytes_written": source.bytes_written, "sessions_ended": ended}
    finally:
        for session in sessions:
            session.connection.close()
        source.stop()


# ---- the legitimate session --------------------------------------------------------------------

def percentile(samples, fraction):
    if not samples:
        return None
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, int(fraction * len(ordered)))], 2)


def run_legit(options, sources):
    """Pings the server every --ping-ms and answers its heartbeats until --seconds pass, SIGTERM
    arrives or --stop-file exists; then writes its report (--report, else standard output)."""
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    started = time.monotonic()
    report = {"established": False, "suspended": False, "why_suspended": []}
    try:
        session = connect_session(options, sources.take(), heartbeat_ms=options.heartbeat_ms,
                                  missing=options.missing)
    except (OSError, ssl.SSLError, Closed) as error:
        report["why_suspended"].append("no session: %s" % error)
        report["suspended"] = True
        write_report(options, report)
        return 1
    report.update(established=True, session_id=session.session_id,
                  heartbeat_ms=session.heartbeat_ms,
                  establish_ms=round((time.monotonic() - started) * 1000, 2))
    print("established %s" % session.session_id, file=sys.stderr, flush=True)
    # A client's liveness budget: silent past heartbeat x (missing + 1) means suspended.
    budget = session.heartbeat_ms * (options.missing + 1) / 1000.0
    outstanding = {}  # sequence -> sent at
    rtts = []
    sequence = 1
    next_ping = time.monotonic()
    max_gap = 0.0
    end = started + options.seconds
    while not stopping and time.monotonic() < end:
        if options.stop_file and os.path.exists(options.stop_file):
            break
        now = time.monotonic()
        if now >= next_ping:
            outstanding[sequence] = now
            session.connection.queue(ping(sequence))
            sequence += 1
            next_ping += options.ping_ms / 1000.0
            if next_ping < now:  # we were late ourselves: do not burst
                next_ping = now + options.ping_ms / 1000.0
        try:
            session.poll(max(0.0, min(next_ping, end) - time.monotonic()))
        except Closed as closed:
            report["why_suspended"].append("connection lost: %s" % closed)
            break
        except InterruptedError:
            continue
        if session.ended:
            report["why_suspended"].append(session.ended)
            break
        for pong_sequence, arrived in session.pongs:
            sent_at = outstanding.pop(pong_sequence, None)
            if sent_at is not None:
                rtts.append((arrived - sent_at) * 1000)
        session.pongs.clear()
        gap = time.monotonic() - session.last_inbound
        max_gap = max(max_gap, gap)
    now = time.monotonic()
    gap = now - session.last_inbound
    max_gap = max(max_gap, gap)
    if max_gap > budget:
        report["why_suspended"].append("nothing from the server for %.0f ms (budget %.0f ms)"
                                       % (max_gap * 1000, budget * 1000))
    # A Ping left unanswered for over a second counts as lost, and as a sample as long as it waited.
    lost = [now - sent_at for sent_at in outstanding.values() if now - sent_at > 1.0]
    samples = rtts + [wait * 1000 for wait in lost]
    gaps = [later - earlier for earlier, later in zip(session.server_pings, session.server_pings[1:])]
    report.update(
        suspended=bool(report["why_suspended"]), pings_sent=sequence - 1, pongs=len(rtts),
        pings_lost=len(lost), rtt_p50_ms=percentile(samples, 0.5), rtt_p99_ms=percentile(samples, 0.99),
        rtt_max_ms=round(max(samples), 2) if samples else None,
        max_silence_ms=round(max_gap * 1000, 1), server_pings=len(session.server_pings),
        max_server_ping_gap_ms=round(max(gaps) * 1000, 1) if gaps else None,
        seconds=round(now - started, 2))
    session.connection.close()
    write_report(options, report)
    return 0


def write_report(options, report):
    text = json.dumps(report)
    if options.report:
        with open(options.report + ".tmp", "w") as out:
            out.write(text + "\n")
        os.replace(options.report + ".tmp", options.report)
    else:
        print(text, flush=True)


# ---- command line ------------------------------------------------------------------------------

ATTACKS = {
    "crash": attack_crash,
    "crash-stream-header": attack_crash_stream_header,
    "stream-flood": attack_stream_flood,
    "ping-flood": attack_ping_flood,
    "reset-data-flood": attack_reset_data_flood,
    "pending-flood": attack_pending_flood,
    "abandon": attack_abandon,
    "slow-target": attack_slow_target,
    "no-ack-download": attack_no_ack_download,
}


def loopback(text):
    address = ipaddress.IPv4Address(text)
    if address not in ipaddress.IPv4Network("127.0.0.0/8"):
        raise argparse.ArgumentTypeError("%s is not a loopback address (127.0.0.0/8)" % text)
    return text


def server_address(text):
    host, _, port = text.rpartition(":")
    return loopback(host), int(port)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n", 1)[1])
    parser.add_argument("--server", type=server_address, required=True, help="127.x.y.z:PORT")
    parser.add_argument("--plain", action="store_true", help="the server runs --plain-insecure")
    parser.add_argument("--source", type=loopback, default="127.0.0.2",
                        help="first source address (127.0.0.1 for the legitimate session)")
    parser.add_argument("--sources", type=int, default=1, help="source addresses used, in turn")
    parser.add_argument("attack", choices=sorted(ATTACKS) + ["legit"])
    parser.add_argument("--seconds", type=float, default=8, help="how long the attack lasts")
    parser.add_argument("--sessions", type=int, default=1, help="sessions (stream-flood, no-ack-download)")
    parser.add_argument("--streams", type=int, default=None,
                        help="streams per session (stream-flood 4096, slow-target 128, no-ack-download 8)")
    parser.add_argument("--variant", help="crash, crash-stream-header: only this variant (default: each)")
    parser.add_argument("--max-bytes", type=int, default=2 << 30, help="cap on bytes a flood sends")
    parser.add_argument("--silent", type=int, default=128,
                        help="pending-flood: TCP-only and TLS-only connections (each)")
    parser.add_argument("--slow", type=int, default=128, help="pending-flood: slow 1 MiB Hellos")
    parser.add_argument("--count", type=int, default=20_000, help="abandon: at most this many sessions")
    parser.add_argument("--threads", type=int, default=4, help="abandon: parallel connections")
    parser.add_argument("--target-port", type=int, default=0,
                        help="slow-target / no-ack-download: the local sink/source's port (on 127.0.0.1)")
    parser.add_argument("--heartbeat-ms", type=int, default=250, help="legit: proposed heartbeat")
    parser.add_argument("--missing", type=int, default=3, help="legit: missing heartbeats allowed")
    parser.add_argument("--ping-ms", type=int, default=100, help="legit: own ping interval")
    parser.add_argument("--stop-file", help="legit: stop once this file exists")
    parser.add_argument("--report", help="legit: write the JSON report here")
    options = parser.parse_args()
    options.tls_context = None if options.plain else tls_context()
    if options.streams is None:
        options.streams = {"stream-flood": 4096, "slow-target": 128}.get(options.attack, 8)
    if options.attack in ("slow-target", "no-ack-download") and not options.target_port:
        parser.error("%s needs --target-port" % options.attack)
    if ipaddress.IPv4Address(options.source) + (options.sources - 1) not in ipaddress.IPv4Network("127.0.0.0/8"):
        parser.error("--source/--sources leave 127.0.0.0/8")
    sources = Sources(options)
    if options.attack == "legit":
        if options.seconds == parser.get_default("seconds"):
            options.seconds = 120
        return run_legit(options, sources)
    started = time.monotonic()
    try:
        figures = ATTACKS[options.attack](options, sources)
    except (OSError, ssl.SSLError, Closed) as error:
        figures = {"error": "%s: %s" % (type(error).__name__, error)}
    figures = {"attack": options.attack, "seconds": round(time.monotonic() - started, 2), **figures}
    print(json.dumps(figures), flush=True)
    return 1 if "error" in figures else 0


if __name__ == "__main__":
    sys.exit(main())
