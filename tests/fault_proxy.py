"""A TCP proxy that a test can cut and restore: the network between the app and its database.

    proxy = FaultProxy("127.0.0.1", 5432).start()   # the app connects to proxy.port
    proxy.refuse()    # live connections are reset; new ones are accepted and reset at once
    proxy.stall()     # live connections are reset; new ones are accepted and never answered
    proxy.restore()   # new connections are forwarded again
    proxy.stop()

Threads, not asyncio, so the test code that drives it stays synchronous. The listening socket
is never closed while the proxy lives, so no other process can take its port during an outage.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from enum import Enum


class Mode(Enum):
    FORWARD = "forward"
    REFUSE = "refuse"
    STALL = "stall"


def _reset(sock: socket.socket) -> None:
    """Close with a TCP RST (SO_LINGER 0), as a dead peer or a firewall would."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        # close() alone does not wake a thread blocked in recv() on this socket; this does.
        sock.shutdown(socket.SHUT_RD)
    sock.close()


class FaultProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port: int = self._listener.getsockname()[1]
        self._mode = Mode.FORWARD
        self._lock = threading.Lock()
        self._live: set[socket.socket] = set()  # both ends of every forwarded connection
        self._held: set[socket.socket] = set()  # stalled connections, answered never
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._accept, name="fault-proxy", daemon=True)
        self.accepted = 0  # connections the app opened, whatever the mode

    def start(self) -> FaultProxy:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._closing.set()
        self._thread.join(timeout=5)
        self._listener.close()
        self._drop_all()

    def refuse(self) -> None:
        self._switch(Mode.REFUSE)

    def stall(self) -> None:
        self._switch(Mode.STALL)

    def restore(self) -> None:
        self._switch(Mode.FORWARD)

    def _switch(self, mode: Mode) -> None:
        with self._lock:
            self._mode = mode
        if mode is not Mode.FORWARD:
            self._drop_all()

    def _drop_all(self) -> None:
        with self._lock:
            doomed = [*self._live, *self._held]
            self._live.clear()
            self._held.clear()
        for sock in doomed:
            _reset(sock)

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                downstream, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            downstream.settimeout(None)
            with self._lock:
                self.accepted += 1
                mode = self._mode
                if mode is Mode.STALL:
                    self._held.add(downstream)
            if mode is Mode.REFUSE:
                _reset(downstream)
            elif mode is Mode.FORWARD:
                self._forward(downstream)

    def _forward(self, downstream: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=5)
        except OSError:
            _reset(downstream)
            return
        upstream.settimeout(None)
        with self._lock:
            self._live.update((downstream, upstream))
        for source, sink in ((downstream, upstream), (upstream, downstream)):
            threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass  # the other direction, or a cut, closed a socket under us
        finally:
            with self._lock:
                ends = [s for s in (source, sink) if s in self._live]
                self._live.difference_update(ends)
            for sock in ends:
                _reset(sock)
