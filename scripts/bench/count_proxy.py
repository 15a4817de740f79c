#!/usr/bin/env python3
"""Counts the Engine API requests a command sends: a byte-for-byte proxy on a unix socket.

    count_proxy.py LISTEN_SOCKET UPSTREAM_SOCKET COUNTS_FILE

Listens on LISTEN_SOCKET and forwards every connection to UPSTREAM_SOCKET unchanged. In the
client-to-engine direction it counts HTTP request lines (`METHOD /path HTTP/1.1`); on SIGTERM
or SIGINT it writes COUNTS_FILE as `key=value` lines: `requests`, `reads` (GET and HEAD),
`writes` (POST, PUT, DELETE) and one `METHOD /kind` line per kind of request (the path's
first word after the API version, e.g. `POST /secrets`). Request bodies are never parsed or
stored, so nothing a command sends (secret data included) is kept: only the request lines'
method and first path word are counted.

scripts/bench.sh scale runs a command once more through this proxy (DOCKER_HOST pointing at
LISTEN_SOCKET), untimed, to count its requests: the proxy's own latency never enters a time.
"""

import asyncio
import collections
import os
import re
import signal
import sys

REQUEST_LINE = re.compile(rb"(GET|HEAD|POST|PUT|DELETE) (/[^ \r\n]*) HTTP/1\.[01]\r\n")
VERSION = re.compile(r"^/v[0-9.]+")


class Counter:
    """Request lines seen so far, by method and path kind."""

    def __init__(self):
        self.kinds = collections.Counter()

    def feed(self, buffer):
        """Counts the complete request lines in `buffer`; returns the unparsed tail."""
        end = 0
        for match in REQUEST_LINE.finditer(buffer):
            method = match.group(1).decode()
            path = VERSION.sub("", match.group(2).decode().split("?")[0])
            word = path.strip("/").split("/")[0]
            self.kinds[f"{method} /{word}"] += 1
            end = match.end()
        tail = buffer[end:]
        return tail[-256:]  # a request line split across two reads is completed next time

    def write(self, path):
        reads = sum(n for kind, n in self.kinds.items() if kind.split()[0] in ("GET", "HEAD"))
        total = sum(self.kinds.values())
        lines = [f"requests={total}", f"reads={reads}", f"writes={total - reads}"]
        lines += [f"{kind}={n}" for kind, n in sorted(self.kinds.items())]
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")


async def pipe(reader, writer, counter=None):
    tail = b""
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            if counter is not None:
                tail = counter.feed(tail + data)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:  # noqa: BLE001 - closing a broken connection
            pass


async def main(listen, upstream, counts):
    counter = Counter()

    async def handle(client_reader, client_writer):
        try:
            engine_reader, engine_writer = await asyncio.open_unix_connection(upstream)
            await asyncio.gather(
                pipe(client_reader, engine_writer, counter),
                pipe(engine_reader, client_writer),
            )
        except (ConnectionError, asyncio.CancelledError):
            pass  # the client went away, or the proxy is stopping: nothing left to count

    if os.path.exists(listen):
        os.unlink(listen)
    server = await asyncio.start_unix_server(handle, path=listen)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
    counter.write(counts)
    os.unlink(listen)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    asyncio.run(main(*sys.argv[1:]))
