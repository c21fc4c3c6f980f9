#!/usr/bin/env python3
"""A second MJPEG load generator, written apart from bench/loadgen.rs.

Why a second one: a load generator is part of what it measures. At 1,000
viewers on two cores it needs about as much CPU as the server, and how it
reads (buffer sizes, wake-ups, HTTP library) decides which server looks
better. Two generators that share no code, language or HTTP library and
agree are evidence; two that disagree say the figure is the generator's.

This one is Python's standard library only: asyncio streams for the
sockets, its own HTTP/1.1 response reader (chunked or not) and its own
multipart parser. N viewers open `GET <url>` at once; after a warm-up, a
fixed window measures, per viewer, the frames whose last byte arrived in
it, and for every such frame its age at arrival: the wall clock when the
read that completed the part returned, minus the part's `X-Timestamp`
(the server's capture time, Unix seconds). A part is complete at its
`Content-Length`, or, without one (the seed's parts), when a read ends in
the JPEG end-of-image marker (FF D9, optionally followed by CRLF) or at
the next boundary, whichever comes first.

One Python process is one core at most, and one core does not read 1,000
streams of 720p30: `--procs` splits the viewers over that many processes
(multiprocessing, spawn), each with its own event loop, all measuring the
same window (CLOCK_MONOTONIC is system-wide). The parent only samples the
server's CPU and RSS from /proc and merges the figures.

Prints one JSON object on one line, with the same keys as
`loadgen mjpeg` where the figures are the same (`fps_min`, `fps_median`,
`mb_per_s`, `latency_ms_p50`, `latency_ms_p99`, `cpu_s_per_s`,
`rss_window_peak_mb`, `client_cpu_s_per_s`, `errors`), plus
`generator`, `procs` and `latency_n`.

    bench/loadgen.py --url http://127.0.0.1:8080/stream.jpg --viewers 1000 \\
        --seconds 20 --warmup 5 --procs 2 --pid <server pid>
    bench/loadgen.py --self-test     # the parsers on made-up streams
"""

import argparse
import array
import asyncio
import json
import math
import multiprocessing
import os
import platform
import socket
import sys
import time
import urllib.parse

# Bytes asked of the stream reader at a time, and its buffer limit: a
# 720p part is about 115 KB, so a read usually returns what the kernel
# handed over in one go (asyncio's transport reads up to 256 KiB).
READ_SIZE = 1 << 20
READER_LIMIT = 1 << 20
# A part's head (boundary line and headers) is tiny; more is a broken stream.
MAX_HEAD = 64 * 1024
# Bytes of the stream a part's head is looked for in at a time, so a whole
# JPEG behind it is not copied into the head buffer.
HEAD_WINDOW = 8 * 1024
EOI = b'\xff\xd9'


class StreamError(Exception):
    """The server sent something this reader does not take for MJPEG."""


class EndOfStream(Exception):
    """The response body ended (a zero-size chunk or a closing boundary)."""


class Multipart:
    """Splits a multipart/x-mixed-replace body into parts, fed in pieces.

    Only counts: a part's bytes are never kept, only its head. `on_part`
    is called with the part's X-Timestamp (or None) when its last byte has
    been fed.
    """

    def __init__(self, boundary, on_part):
        self.marker = b'--' + boundary
        # The boundary as it ends a part without a length.
        self.delim = b'\r\n' + self.marker
        self.on_part = on_part
        self.head = bytearray()
        # None: reading a head; an int: body bytes left; -1: body of unknown length.
        self.left = None
        self.ts = None
        self.done = False  # unknown length: EOI already seen and counted
        self.carry = b''  # unknown length: the body's last bytes (a split delimiter, FF D9)

    def feed(self, data, start, end):
        while start < end:
            if self.left is None:
                start = self._head(data, start, end)
            elif self.left >= 0:
                take = min(self.left, end - start)
                self.left -= take
                start += take
                if self.left == 0:
                    self.left = None
                    self.on_part(self.ts)
            else:
                start = self._unknown(data, start, end)

    def _head(self, data, start, end):
        stop = min(end, start + HEAD_WINDOW)
        before = len(self.head)
        self.head += data[start:stop]
        h = self.head
        m = h.find(self.marker)
        if m < 0:
            if len(h) > MAX_HEAD:
                raise StreamError('no boundary in %d bytes' % len(h))
            return stop
        after = m + len(self.marker)
        if len(h) >= after + 2 and h[after:after + 2] == b'--':
            raise EndOfStream()
        line_end = h.find(b'\r\n', after)
        head_end = h.find(b'\r\n\r\n', line_end) if line_end >= 0 else -1
        if head_end < 0:
            if len(h) > MAX_HEAD:
                raise StreamError('part head over %d bytes' % MAX_HEAD)
            return stop
        length, ts = None, None
        for line in bytes(h[line_end + 2:head_end]).split(b'\r\n'):
            name, sep, value = line.partition(b':')
            if not sep:
                continue
            name = name.strip().lower()
            try:
                if name == b'content-length':
                    length = int(value)
                elif name == b'x-timestamp':
                    ts = float(value)
            except ValueError:
                raise StreamError('bad part header %r' % line) from None
        body_at = start + (head_end + 4 - before)
        self.head = bytearray()
        self.ts = ts
        if length is None:
            self.left = -1
            self.done = False
            self.carry = b''
        elif length < 0:
            raise StreamError('negative Content-Length')
        elif length == 0:
            self.on_part(ts)
        else:
            self.left = length
        return body_at

    def _unknown(self, data, start, end):
        """A body without a length: up to the next delimiter."""
        keep = len(self.delim) - 1
        # A delimiter that began in the last piece and ends in this one.
        if self.carry:
            at = (self.carry + data[start:start + keep]).find(self.delim)
            if 0 <= at < len(self.carry):
                return self._close(start, self.carry[at:])
        at = data.find(self.delim, start, end)
        if at >= 0:
            return self._close(at, b'')
        tail = self.carry + data[max(start, end - keep):end]
        self.carry = tail[-keep:]
        # The picture is whole when the bytes so far end in its EOI marker.
        if not self.done and (tail.endswith(EOI) or tail.endswith(EOI + b'\r\n')):
            self.done = True
            self.on_part(self.ts)
        return end

    def _close(self, at, begun):
        """The delimiter starts at `at`, after the bytes `begun` of it that
        came in the last piece; the head parser finds the marker from there."""
        if not self.done:
            self.on_part(self.ts)
        self.left = None
        self.carry = b''
        self.head = bytearray(begun)
        return at


class Body:
    """An HTTP/1.1 response body, de-chunked when chunked, to a sink(data, start, end)."""

    def __init__(self, chunked, sink):
        self.chunked = chunked
        self.sink = sink
        self.line = bytearray()
        self.left = None  # chunked: data bytes left in this chunk, None while reading a size line

    def feed(self, data):
        n = len(data)
        if not self.chunked:
            self.sink(data, 0, n)
            return n
        pos, payload = 0, 0
        while pos < n:
            if self.left is None:
                i = data.find(b'\n', pos)
                if i < 0:
                    self.line += data[pos:]
                    if len(self.line) > 1024:
                        raise StreamError('chunk size line too long')
                    return payload
                self.line += data[pos:i + 1]
                pos = i + 1
                size = bytes(self.line).split(b';')[0].strip()
                self.line.clear()
                if not size:
                    continue  # the CRLF after a chunk's data
                try:
                    self.left = int(size, 16)
                except ValueError:
                    raise StreamError('bad chunk size %r' % size) from None
                if self.left == 0:
                    raise EndOfStream()
            else:
                take = min(self.left, n - pos)
                self.sink(data, pos, pos + take)
                payload += take
                pos += take
                self.left -= take
                if self.left == 0:
                    self.left = None
        return payload


def parse_response_head(raw):
    """Status, headers (lower-case names) of a response head."""
    lines = raw.decode('latin-1').split('\r\n')
    parts = lines[0].split(' ', 2)
    if len(parts) < 2 or not parts[0].startswith('HTTP/'):
        raise StreamError('not an HTTP response: %r' % lines[0])
    headers = {}
    for line in lines[1:]:
        if ':' in line:
            k, v = line.split(':', 1)
            headers[k.strip().lower()] = v.strip()
    return int(parts[1]), headers


def boundary_of(content_type):
    for p in content_type.split(';'):
        p = p.strip()
        if p.lower().startswith('boundary='):
            b = p[len('boundary='):].strip('"')
            return (b[2:] if b.startswith('--') else b).encode('latin-1')
    raise StreamError('no boundary in Content-Type %r' % content_type)


class Viewer:
    """What one viewer saw inside the window."""

    def __init__(self, start, end):
        self.start, self.end = start, end
        self.frames = 0
        self.bytes = 0
        self.ages = array.array('d')
        self.error = None
        self.in_window = False
        self.now_wall = 0.0

    def part(self, ts):
        if self.in_window:
            self.frames += 1
            if ts is not None:
                self.ages.append((self.now_wall - ts) * 1000.0)


async def view(v, url):
    u = urllib.parse.urlsplit(url)
    port = u.port or 80
    path = u.path or '/'
    if u.query:
        path += '?' + u.query
    reader, writer = await asyncio.open_connection(u.hostname, port, limit=READER_LIMIT)
    try:
        sock = writer.get_extra_info('socket')
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        writer.write(('GET %s HTTP/1.1\r\nHost: %s\r\nAccept: */*\r\n'
                      'Connection: keep-alive\r\n\r\n' % (path, u.netloc)).encode('latin-1'))
        await writer.drain()
        status, headers = parse_response_head(await reader.readuntil(b'\r\n\r\n'))
        if status != 200:
            raise StreamError('HTTP %d' % status)
        parts = Multipart(boundary_of(headers.get('content-type', '')), v.part)
        body = Body('chunked' in headers.get('transfer-encoding', '').lower(), parts.feed)
        monotonic, wall = time.monotonic, time.time
        start, end = v.start, v.end
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                raise StreamError('server ended the stream')
            now = monotonic()
            v.now_wall = wall()
            v.in_window = start <= now < end
            payload = body.feed(data)
            if v.in_window:
                v.bytes += payload
    finally:
        writer.close()


async def run_viewers(url, count, start, end):
    viewers = [Viewer(start, end) for _ in range(count)]

    async def one(v):
        try:
            await view(v, url)
        except asyncio.CancelledError:
            raise
        except EndOfStream:
            v.error = 'server ended the stream'
        except Exception as e:  # noqa: BLE001 - every failure is reported, none raised
            v.error = '%s: %s' % (type(e).__name__, e)

    loop = asyncio.get_running_loop()
    cpu = {}
    # loop.time() is time.monotonic(): the same clock as the window's.
    loop.call_at(start, lambda: cpu.__setitem__('start', cpu_seconds()))
    tasks = [asyncio.create_task(one(v)) for v in viewers]
    await asyncio.sleep(max(0.0, end - time.monotonic()))
    cpu['end'] = cpu_seconds()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return viewers, cpu.get('end', 0.0) - cpu.get('start', cpu.get('end', 0.0))


def cpu_seconds():
    t = os.times()
    return t.user + t.system


def child(url, count, start, end):
    """One process's share of the viewers; returns plain data for the parent."""
    viewers, cpu = asyncio.run(run_viewers(url, count, start, end))
    return ([(v.frames, v.bytes, v.error) for v in viewers],
            b''.join(v.ages.tobytes() for v in viewers), cpu)


# ------------------------------------------------------------------ /proc


def proc_ticks(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            stat = f.read()
    except OSError:
        return None
    fields = stat[stat.rfind(')') + 1:].split()
    return int(fields[11]) + int(fields[12])


def proc_kb(pid, key):
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith(key):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


# ------------------------------------------------------------------ figures


def percentile(samples, p):
    """Nearest rank."""
    if not samples:
        return None
    v = sorted(samples)
    rank = max(1, min(len(v), math.ceil(p * len(v))))
    return v[rank - 1]


def rounded(x):
    return None if x is None or not math.isfinite(x) else round(x, 3)


def measure(a):
    counts = [a.viewers // a.procs + (1 if i < a.viewers % a.procs else 0) for i in range(a.procs)]
    counts = [c for c in counts if c > 0]
    start = time.monotonic() + a.warmup
    end = start + a.seconds
    ctx = multiprocessing.get_context('spawn')
    out = {'mode': 'mjpeg', 'generator': 'python-asyncio', 'python': platform.python_version(),
           'procs': len(counts), 'viewers': a.viewers, 'seconds': a.seconds}
    with ctx.Pool(len(counts)) as pool:
        pending = pool.starmap_async(child, [(a.url, c, start, end) for c in counts])
        time.sleep(max(0.0, start - time.monotonic()))
        t0, peak = (proc_ticks(a.pid) if a.pid else None), 0
        while a.pid and time.monotonic() < end:
            peak = max(peak, proc_kb(a.pid, 'VmRSS:') or 0)
            time.sleep(min(0.1, max(0.0, end - time.monotonic())))
        t1 = proc_ticks(a.pid) if a.pid else None
        if a.pid:
            peak = max(peak, proc_kb(a.pid, 'VmRSS:') or 0)
        results = pending.get(timeout=a.seconds + a.warmup + 120)
    if t0 is not None and t1 is not None:
        out['cpu_s_per_s'] = rounded((t1 - t0) / a.clk_tck / a.seconds)
        out['rss_window_peak_mb'] = rounded(peak / 1024)
        hwm = proc_kb(a.pid, 'VmHWM:')
        out['rss_hwm_mb'] = rounded(hwm / 1024) if hwm else None
    fps, total, errors, ages, cpu = [], 0, [], array.array('d'), 0.0
    for viewers, raw_ages, child_cpu in results:
        for frames, nbytes, error in viewers:
            fps.append(frames / a.seconds)
            total += nbytes
            if error:
                errors.append(error)
        ages.frombytes(raw_ages)
        cpu += child_cpu
    out['fps_min'] = rounded(min(fps)) if fps else None
    out['fps_median'] = rounded(percentile(fps, 0.5))
    out['fps_max'] = rounded(max(fps)) if fps else None
    out['mb_per_s'] = rounded(total / 1e6 / a.seconds)
    out['latency_ms_p50'] = rounded(percentile(ages, 0.5))
    out['latency_ms_p99'] = rounded(percentile(ages, 0.99))
    out['latency_n'] = len(ages)
    out['client_cpu_s_per_s'] = rounded(cpu / a.seconds)
    out['errors'] = len(errors)
    if errors:
        out['first_error'] = errors[0]
    return out


# ------------------------------------------------------------------ self-test


def self_test():
    """The parsers on made-up streams, fed whole and cut at every offset (and
    in 1-byte pieces): lookout's shape (chunked, Content-Length, X-Timestamp,
    the next boundary at the end of each part) and the seed's (no length)."""
    jpeg = b'\xff\xd8' + bytes(range(256)) * 3 + b'\xff\x00\xff\xd9'
    lookout = b'--frame\r\n' + b''.join(
        b'Content-Type: image/jpeg\r\nContent-Length: %d\r\nX-Timestamp: %d.25\r\n\r\n'
        % (len(jpeg), i) + jpeg + b'\r\n--frame\r\n' for i in range(3))
    chunked = b'9\r\n--frame\r\n' + b''.join(
        b'%x\r\n' % len(p) + p + b'\r\n'
        for p in [lookout[9:][i * len(lookout[9:]) // 3:(i + 1) * len(lookout[9:]) // 3] for i in range(3)])
    seed = b''.join(b'--frame\r\nContent-Type: image/jpeg\r\nX-Timestamp: %d.5\r\n\r\n' % i
                    + jpeg + b'\r\n' for i in range(3))

    def run(pieces, is_chunked):
        got = []
        body = Body(is_chunked, Multipart(b'frame', got.append).feed)
        for p in pieces:
            body.feed(p)
        return got

    def cuts(stream):
        yield [stream]
        yield [stream[i:i + 1] for i in range(len(stream))]
        for at in range(1, len(stream)):
            yield [stream[:at], stream[at:]]

    cases = [(chunked, True, [0.25, 1.25, 2.25]), (lookout, False, [0.25, 1.25, 2.25]),
             (seed, False, [0.5, 1.5, 2.5])]
    for stream, is_chunked, want in cases:
        for pieces in cuts(stream):
            got = run(pieces, is_chunked)
            if got != want:
                raise AssertionError('parts %r, want %r, pieces of %s' % (
                    got, want, [len(p) for p in pieces][:8]))
    # A seed part whose EOI arrives at the end of a read counts then, once.
    got = []
    m = Multipart(b'frame', got.append)
    m.feed(seed[:seed.index(b'\r\n--frame', 10)], 0, seed.index(b'\r\n--frame', 10))
    assert got == [0.5], got
    m.feed(b'\r\n--frame\r\n', 0, 11)
    assert got == [0.5], got
    # The closing boundary and a zero-size chunk end the stream.
    for stream, is_chunked in ((b'--frame--\r\n', False), (b'0\r\n\r\n', True)):
        try:
            Body(is_chunked, Multipart(b'frame', got.append).feed).feed(stream)
        except EndOfStream:
            pass
        else:
            raise AssertionError('no end in %r' % stream)
    assert percentile([3, 1, 2, 4], 0.5) == 2 and percentile([5], 0.99) == 5
    print('self-test passed')


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--url', help='the MJPEG stream, http://host:port/path')
    ap.add_argument('--viewers', type=int, default=1)
    ap.add_argument('--seconds', type=float, default=10.0, help='the measured window')
    ap.add_argument('--warmup', type=float, default=5.0,
                    help='seconds between starting the viewers and opening the window')
    ap.add_argument('--procs', type=int, default=1,
                    help='processes the viewers are split over (one core each at most)')
    ap.add_argument('--pid', type=int, help='server process to sample (CPU, RSS) over the window')
    ap.add_argument('--clk-tck', type=int, default=os.sysconf('SC_CLK_TCK'))
    ap.add_argument('--label', action='append', default=[], help='key=value added to the output')
    ap.add_argument('--self-test', action='store_true', help='check the parsers and exit')
    a = ap.parse_args()
    if a.self_test:
        self_test()
        return 0
    if not a.url or a.viewers < 1 or a.procs < 1 or a.seconds <= 0:
        ap.error('--url, --viewers >= 1, --procs >= 1 and --seconds > 0 are needed')
    labels = {}
    for kv in a.label:
        k, sep, v = kv.partition('=')
        if not sep:
            ap.error('label %r is not key=value' % kv)
        labels[k] = v
    try:
        out, ok = measure(a), True
    except Exception as e:  # noqa: BLE001 - the report says what broke
        out, ok = {'error': '%s: %s' % (type(e).__name__, e)}, False
    out.update(labels)
    print(json.dumps(out), flush=True)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
