"""The seed tutorial's backyard cam, as it stands after its page 10.8, on CPython.

A peer for scripts/bench: the OpenMV "Web Servers" chapter's microdot server
(capture loop, /status, /snapshot.jpg, /stream.jpg, /config, SSE /events,
WebSocket /control), run on the real `microdot` package from PyPI under
CPython. The /control handler is the seed page's code as printed; the rest
follows the chapter as summarised in shared/seed/tutorial-chapter.md (pages
10.1-10.7). Pages after the seed (auth, TLS, CORS, uploads) are left out, as
lookout runs without them in the benchmark too.

Every change needed to run on CPython, or to feed the benchmark, is marked
with a "BENCH CHANGE" comment. Two changes in behaviour: the camera, an
OpenMV sensor, is replaced by a replay of pre-encoded 1280x720 JPEGs (real
footage, the same files lookout's `file:` source replays) at 30 fps in the
order of the folder's sequence.txt; and `compute_change`, which the tutorial
leaves out, does real frame differencing at 1/8 scale (with Pillow). One
addition to what the viewers receive: each part carries an `X-Timestamp:`
header with its frame's capture time (Unix seconds, as lookout's parts do),
so the frames' age at a viewer can be measured for both servers.

Usage: python seed_cam.py --port PORT --frames DIR
"""

import argparse  # BENCH CHANGE: command-line port and frame folder
import asyncio
import json
import io  # BENCH CHANGE: Pillow reads the JPEG from memory
import os  # BENCH CHANGE: to read the recorded frames
import time

from PIL import Image, ImageChops  # BENCH CHANGE: compute_change decodes

from microdot import Microdot
from microdot.sse import with_sse
from microdot.websocket import WebSocket, with_websocket
from microdot.websocket import WebSocketError

# BENCH CHANGE: the tutorial says `ws.send()` sends a dict as a JSON text frame;
# upstream microdot's send() takes only str or bytes. This wrapper supplies the
# behaviour the tutorial describes, so the handlers below stay as printed.
_send = WebSocket.send


async def _send_json(self, data, opcode=None):
    if isinstance(data, (dict, list)):
        data = json.dumps(data)
    return await _send(self, data, opcode)


WebSocket.send = _send_json


# BENCH CHANGE: the camera. On the OpenMV Cam this is the `csi` sensor wrapped
# in AsyncCSI (RGB565 QVGA, polled without blocking). Here it replays recorded
# JPEGs at the source rate, keeping the same call shape:
# `img = await csi0.snapshot()` then `img.compress(quality=85).bytearray()`.
class _ReplayImage:
    def __init__(self, jpeg):
        self._jpeg = jpeg

    def compress(self, quality=85):
        return self  # already a JPEG (the bench's footage)

    def bytearray(self):
        return self._jpeg


class ReplayCSI:
    def __init__(self, folder, fps=30):
        with open(os.path.join(folder, 'sequence.txt')) as f:
            names = [line.strip() for line in f if line.strip()]
        pictures = {}
        for name in set(names):
            with open(os.path.join(folder, name), 'rb') as f:
                pictures[name] = f.read()
        self.frames = [pictures[n] for n in names]
        self.period = 1.0 / fps
        self.i = 0
        self.next_at = None

    async def snapshot(self):
        # A camera hands over a frame every 1/fps seconds: sleep until then.
        now = time.monotonic()
        if self.next_at is None:
            self.next_at = now
        delay = self.next_at - now
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -self.period:
            self.next_at = now  # fell behind: skip ahead, do not bunch up
        self.next_at += self.period
        img = _ReplayImage(self.frames[self.i % len(self.frames)])
        self.i += 1
        return img


csi0 = None  # BENCH CHANGE: made in __main__ from --frames

app = Microdot()

# 10.1: module globals behind /status (never synced with `state`, as printed).
frame_count = 0
trigger_count = 0

# 10.5: the settings and counters behind /config.
state = {'threshold': 12, 'frame_count': 0, 'trigger_count': 0}

# 10.4 / 10.7: shared between the tasks and the handlers.
latest_jpeg = None
# BENCH CHANGE: the capture time of latest_jpeg as a part header line, so the
# load generators can time a frame from capture to a viewer's last byte, as
# they do with lookout's parts (the seed's parts carry no timestamp).
latest_stamp = b''
new_frame = asyncio.Event()
motion_event = asyncio.Event()
last_motion = None


@app.get('/status')
async def status(request):
    return {'frames': frame_count, 'triggers': trigger_count}


@app.get('/snapshot.jpg')
async def snapshot(request):
    if latest_jpeg is None:
        return 'no frame yet', 503
    return latest_jpeg, 200, {'Content-Type': 'image/jpeg'}


# 10.4: one iterator per viewer; each waits for the capture loop's pulse and
# sends the latest frame (a slow viewer skips frames).
class FrameStream:
    def __aiter__(self):
        return self

    async def __anext__(self):
        await new_frame.wait()
        if latest_jpeg is None:
            return b''
        return (b'--frame\r\nContent-Type: image/jpeg\r\n' + latest_stamp +  # BENCH CHANGE
                b'\r\n' + latest_jpeg + b'\r\n')


@app.get('/stream.jpg')
async def stream(request):
    return FrameStream(), 200, {
        'Content-Type': 'multipart/x-mixed-replace; boundary=frame'}


@app.get('/config')
async def get_config(request):
    return state


@app.post('/config')
async def set_config(request):
    data = request.json
    if not data or 'threshold' not in data:
        return 'missing threshold', 400
    try:
        t = int(data['threshold'])
    except (TypeError, ValueError):
        return 'threshold must be an integer', 400
    if t < 0 or t > 100:
        return 'threshold out of range', 400
    state['threshold'] = t
    return {'ok': True, 'threshold': t}


@app.get('/events/<int:event_id>')
async def get_event(request, event_id):
    return {'id': event_id, 'msg': 'placeholder'}


@app.errorhandler(404)
async def not_found(request):
    return {'error': 'not found', 'path': request.path}, 404


# 10.7: push motion events to every dashboard.
@app.route('/events')
@with_sse
async def events(request, sse):
    while True:
        try:
            await asyncio.wait_for(motion_event.wait(), timeout=15)
        except asyncio.TimeoutError:
            await sse.send('keepalive', comment=True)
            continue
        motion_event.clear()
        if last_motion:
            await sse.send(last_motion, event='motion')


# 10.8 (the seed page), as printed.
@app.get('/control')
@with_websocket
async def control(request, ws):
    while True:
        try:
            msg = await ws.receive()
        except WebSocketError:
            break
        try:
            cmd = json.loads(msg)
        except ValueError:
            await ws.send({'error': 'bad json'})
            continue
        if cmd.get('cmd') == 'snapshot_now':
            if latest_jpeg:
                # Not exercised by the benchmark: /sdcard exists on the cam only.
                path = '/sdcard/snaps/manual-{}.jpg'.format(
                    int(time.time()))
                with open(path, 'wb') as f:
                    f.write(latest_jpeg)
                await ws.send({'ok': True, 'saved': path})
            else:
                await ws.send({'ok': False, 'reason': 'no frame yet'})
        elif cmd.get('cmd') == 'reset':
            state['trigger_count'] = 0
            await ws.send({'ok': True, 'counters': 'reset'})
        else:
            await ws.send({'error': 'unknown command'})


# 10.4: the one capture loop every viewer shares.
async def capture_loop():
    global latest_jpeg, latest_stamp
    while True:
        img = await csi0.snapshot()
        captured = time.time()  # BENCH CHANGE: the frame's capture time
        latest_jpeg = bytes(img.compress(quality=85).bytearray())
        latest_stamp = b'X-Timestamp: %.6f\r\n' % captured  # BENCH CHANGE
        new_frame.set()
        new_frame.clear()


# BENCH CHANGE: the tutorial leaves frame differencing out of scope
# ("returns a number"). This is real differencing, as the OpenMV cam would do
# it on a small picture: each JPEG decoded straight to 1/8 scale in the DCT
# domain (Pillow's draft mode, libjpeg's scaled decode; 160x90 for 720p),
# luma only; the change is the percentage of pixels that differ from the
# previous analysed frame by more than 25 levels. Each frame is decoded once
# (the previous small picture is kept).
_small_cache = (None, None)


def _small(jpeg):
    global _small_cache
    if _small_cache[0] is jpeg:
        return _small_cache[1]
    im = Image.open(io.BytesIO(jpeg))
    im.draft('L', (im.width // 8, im.height // 8))
    small = im.convert('L')
    _small_cache = (jpeg, small)
    return small


def compute_change(prev, cur):
    if prev is None or cur is None:
        return 0
    a = _small(prev)
    b = _small(cur)
    if a.size != b.size:
        return 0
    hist = ImageChops.difference(a, b).histogram()
    changed = sum(hist[26:])
    return 100 * changed // (a.size[0] * a.size[1])


# 10.7: the motion detector.
async def motion_detector():
    global trigger_count, last_motion
    prev = None
    while True:
        await new_frame.wait()
        change = compute_change(prev, latest_jpeg)
        if change > state['threshold']:
            trigger_count += 1
            last_motion = {'ts': time.time(), 'count': trigger_count,
                           'change': change}
            motion_event.set()
        prev = latest_jpeg
        await asyncio.sleep(0.05)  # BENCH CHANGE: MicroPython's sleep_ms(50)


async def main(host, port):
    # BENCH CHANGE: host and port from the command line (the tutorial serves
    # 0.0.0.0:80; the benchmark stays on loopback, on a free port).
    await asyncio.gather(capture_loop(), motion_detector(),
                         app.start_server(host=host, port=port))


if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--host', default='127.0.0.1')
    parser.add_argument('--port', type=int, required=True)
    parser.add_argument('--frames', required=True,
                        help='folder with sequence.txt and its JPEGs')
    args = parser.parse_args()
    csi0 = ReplayCSI(args.frames)
    asyncio.run(main(args.host, args.port))
