"""A small SMTP server for the delivery tests.

Accepts mail on 127.0.0.1:PORT and appends each message, as one JSON line
(`{"to": [...], "data": "..."}`), to OUTPUT. Recipients whose local part starts with
`reject` are refused with a permanent 550, as a real server refuses an unknown mailbox.

Usage: python3 server.py PORT OUTPUT
"""

import asyncio
import json
import signal
import sys

from aiosmtpd.controller import Controller


class Recorder:
    def __init__(self, output):
        self.output = output

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.split("@", 1)[0].lower().startswith("reject"):
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        line = json.dumps(
            {
                "to": envelope.rcpt_tos,
                "data": envelope.content.decode("utf-8", errors="replace"),
            }
        )
        with open(self.output, "a", encoding="utf-8") as output:
            output.write(line + "\n")
        return "250 Message accepted for delivery"


def main():
    port = int(sys.argv[1])
    output = sys.argv[2]
    controller = Controller(Recorder(output), hostname="127.0.0.1", port=port)
    controller.start()
    print(f"listening on {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.new_event_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    loop.run_until_complete(stop.wait())
    controller.stop()


if __name__ == "__main__":
    main()
