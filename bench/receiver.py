#!/usr/bin/env python3
"""A webhook receiver for the benchmark (standard library only): answers every request
with 204 at once, over kept-alive HTTP/1.1 connections, and records for each POST its
arrival time (Unix seconds, this machine's clock) and the body's `timestamp` (the
event's `created_at`, docs/webhooks.md).

Usage: receiver.py PORT OUTPUT
Prints "ready" once listening. On SIGTERM or SIGINT it writes OUTPUT, one line a
delivery: `arrival_unix_seconds<TAB>event_unix_seconds<TAB>webhook-id`, then exits.
"""

import asyncio
import datetime
import json
import signal
import sys
import time

RECORDS = []
NO_CONTENT = b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"


async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            arrival = time.time()
            length = 0
            hook_id = ""
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value.strip())
                elif name == b"webhook-id":
                    hook_id = value.strip().decode()
            body = await reader.readexactly(length) if length else b""
            if head.startswith(b"POST"):
                RECORDS.append((arrival, body, hook_id))
            writer.write(NO_CONTENT)
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
        pass
    finally:
        writer.close()


def event_seconds(body: bytes) -> float:
    stamp = json.loads(body)["timestamp"]
    return datetime.datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


async def main() -> None:
    port, output = int(sys.argv[1]), sys.argv[2]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await asyncio.start_server(serve, "127.0.0.1", port, backlog=1024)
    print("ready", flush=True)
    await stop.wait()
    server.close()
    with open(output, "w", encoding="utf-8") as handle:
        for arrival, body, hook_id in RECORDS:
            handle.write(f"{arrival:.6f}\t{event_seconds(body):.6f}\t{hook_id}\n")


if __name__ == "__main__":
    asyncio.run(main())
