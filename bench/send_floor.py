#!/usr/bin/env python3
"""The floor under any MJPEG server's CPU: one thread sending each frame to N
loopback readers with plain blocking writes, paced at the camera's rate, and
nothing else (no HTTP, no detection, no event loop). Its CPU is what the
kernel charges a sender for moving those bytes through loopback TCP (the copy
into socket buffers, and the receivers' TCP processing, which loopback runs
in the sender's system call), so a server's CPU at N viewers can be read
against it: no user-space change takes a server below it.

With --sendfile each frame is written once to a memfd and sent to every
reader with sendfile(2) instead (zero-copy on the sending side): the usual
idea for cutting that cost, measured rather than assumed.

Prints one JSON line: the writer's user and system CPU per wall second over
the window, the frames and bytes a second it sent. The readers run in a
child process, so their CPU is not counted.
"""
import argparse
import json
import os
import select
import socket
import sys
import time


def readers(port, n, seconds):
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(n)]
    ep = select.epoll()
    by_fd = {}
    for s in socks:
        ep.register(s.fileno(), select.EPOLLIN)
        by_fd[s.fileno()] = s
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for fd, _ in ep.poll(0.5):
            try:
                if not by_fd[fd].recv(1 << 20):
                    ep.unregister(fd)
            except OSError:
                ep.unregister(fd)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--viewers", type=int, required=True)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--fps", type=float, default=30.0)
    ap.add_argument("--frame-kb", type=int, default=117)
    ap.add_argument("--sendfile", action="store_true")
    ap.add_argument("--label", action="append", default=[], help="key=value for the JSON line")
    a = ap.parse_args()
    frame = os.urandom(a.frame_kb * 1024)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(max(a.viewers, 128))
    port = listener.getsockname()[1]
    child = os.fork()
    if child == 0:
        try:
            readers(port, a.viewers, a.seconds + 5)
        finally:
            os._exit(0)
    conns = []
    try:
        for _ in range(a.viewers):
            c, _ = listener.accept()
            c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            conns.append(c)
        time.sleep(0.5)
        t0 = time.monotonic()
        c0 = os.times()
        frames = 0
        due = t0
        while time.monotonic() - t0 < a.seconds:
            if a.sendfile:
                fd = os.memfd_create("frame")
                try:
                    os.write(fd, frame)
                    for c in conns:
                        off = 0
                        while off < len(frame):
                            off += os.sendfile(c.fileno(), fd, off, len(frame) - off)
                finally:
                    os.close(fd)
            else:
                for c in conns:
                    c.sendall(frame)
            frames += 1
            due += 1 / a.fps
            wait = due - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        c1 = os.times()
        wall = time.monotonic() - t0
    finally:
        for c in conns:
            c.close()
        os.waitpid(child, 0)
    out = {
        "mode": "send_floor",
        "how": "sendfile" if a.sendfile else "write",
        "viewers": a.viewers,
        "seconds": round(wall, 2),
        "fps": round(frames / wall, 2),
        "mb_per_s": round(frames * a.viewers * len(frame) / wall / 1e6, 1),
        "user_s_per_s": round((c1.user - c0.user) / wall, 4),
        "sys_s_per_s": round((c1.system - c0.system) / wall, 4),
        "cpu_s_per_s": round((c1.user - c0.user + c1.system - c0.system) / wall, 4),
    }
    for kv in a.label:
        k, _, v = kv.partition("=")
        out[k] = v
    print(json.dumps(out))


if __name__ == "__main__":
    sys.exit(main())
