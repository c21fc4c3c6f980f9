#!/usr/bin/env python3
"""MJPEG cameras for the one-core bench: N HTTP MJPEG streams from one folder.

Serves GET /camK.mjpg (K = 1, 2, ...) as `multipart/x-mixed-replace` at
--fps, from the JPEG files of --frames in the order of its sequence.txt
(the bench's walkers, played forward then back), and GET /stats (JSON: the
parts each path has sent). Each camera starts K * 7 frames into the loop, so
the cameras do not all show the same picture at the same moment.

A camera's clock does not wait for its client: the picture sent is the one
due at the time of sending, so a client that reads too slowly gets fewer
pictures (as from an IP camera), never a growing backlog; what a slow
lookout loses shows in its own frame counts and in /stats.

Prints `ready PORT` on stdout once it listens (--port 0: any free port) and
runs until SIGTERM, or until its stdin is closed when it is a pipe.
Usage: bench/onecore/feeder.py --frames DIR [--port N] [--fps 10]
"""

import argparse
import asyncio
import json
import os
import re
import signal
import stat
import sys
import time

BOUNDARY = "onecoreframe"
PHASE = 7


def load(folder):
    with open(os.path.join(folder, "sequence.txt")) as f:
        names = [line.strip() for line in f if line.strip()]
    frames = []
    for name in names:
        with open(os.path.join(folder, name), "rb") as f:
            frames.append(f.read())
    if not frames:
        sys.exit(f"no frames in {folder}")
    return frames


class Feeder:
    def __init__(self, frames, fps, phase):
        self.frames = frames
        self.phase = phase
        self.fps = fps
        self.sent = {}
        self.t0 = time.monotonic()

    async def handle(self, reader, writer):
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            path = head.split(b" ", 2)[1].decode("latin-1")
            m = re.fullmatch(r"/cam(\d{1,4})\.mjpg", path)
            if path == "/stats":
                body = json.dumps({"sent": self.sent}).encode()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(body) + body)
                await writer.drain()
            elif m:
                await self.stream(writer, path, int(m.group(1)))
            else:
                writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n"
                             b"Connection: close\r\n\r\n")
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError, IndexError,
                asyncio.LimitOverrunError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def stream(self, writer, path, k):
        writer.write(b"HTTP/1.1 200 OK\r\nCache-Control: no-cache\r\nConnection: close\r\n"
                     b"Content-Type: multipart/x-mixed-replace; boundary=" + BOUNDARY.encode()
                     + b"\r\n\r\n")
        self.sent.setdefault(path, 0)
        n = len(self.frames)
        tick = 0
        while True:
            now = time.monotonic()
            due = int((now - self.t0) * self.fps)
            if due < tick:
                await asyncio.sleep((tick - (now - self.t0) * self.fps) / self.fps)
                continue
            tick = due + 1
            jpeg = self.frames[(due + k * self.phase) % n]
            writer.write(b"--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n"
                         b"X-Timestamp: %.6f\r\n\r\n"
                         % (BOUNDARY.encode(), len(jpeg), time.time()) + jpeg + b"\r\n")
            await writer.drain()
            self.sent[path] += 1


async def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", required=True, help="folder of JPEGs with sequence.txt")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--fps", type=float, default=10.0)
    p.add_argument("--phase", type=int, default=PHASE,
                   help="frames between one camera's picture and the next's (0: all the same)")
    a = p.parse_args()
    feeder = Feeder(load(a.frames), a.fps, a.phase)
    server = await asyncio.start_server(feeder.handle, "127.0.0.1", a.port)
    port = server.sockets[0].getsockname()[1]
    print(f"ready {port}", flush=True)
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, done.set)
    if stat.S_ISFIFO(os.fstat(0).st_mode):
        # A closed stdin pipe means the bench that started us is gone.
        loop.add_reader(0, lambda: os.read(0, 4096) or done.set())
    async with server:
        await done.wait()


if __name__ == "__main__":
    asyncio.run(main())
