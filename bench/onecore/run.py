#!/usr/bin/env python3
"""One core's budget (issue 32, item 4): how many cameras lookout keeps at
full rate on one core.

lookout runs pinned to CPU 0 (`taskset -c 0`; its children, an RTSP
camera's ffmpeg decoders, inherit the pinning); this driver, the cameras and
the viewers run on CPU 1 (scripts/bench starts the driver under
`taskset -c 1`, and everything it starts inherits that). For each camera
count, in a fresh lookout with every camera's settings at their defaults
(detection, pre-roll clips, the person check on):

  mjpeg  N 1280x720 10 fps MJPEG cameras served over HTTP by
         bench/onecore/feeder.py (the bench's walkers), each read by
         lookout's http:// source, and two viewers per camera on
         /cams/NAME/stream.jpg (bench/loadgen.rs `mjpeg`);
  rtsp   N RTSP cameras with a substream, all sessions of one test camera
         (scripts/rtsp-server, the walkers: an H.264 main stream read
         undecoded, a 640x360 10 fps substream decoded and detected on), and
         two /cams/NAME/live.mp4 viewers per camera (read here; one MP4
         fragment is one frame).

After a warm-up, one window: each camera's frames received and frames
analysed a second (/metrics), the viewers' frames a second, lookout's CPU
(the process and its children) and RSS, the person checks that ran, the busy
time of both CPUs from /proc/stat (what else ran on lookout's core), and
lookout's CPU per thread, grouped by thread name. A count keeps full rate
when every camera received at least --keep times its rate, every viewer got
at least --keep times it, and every camera's detector analysed at least
--keep of the frames it was due to analyse (lookout counts the ones it
missed because the previous analysis was still running:
lookout_motion_frames_missed_total). The counts run in ascending order
and stop after two that do not keep full rate.

Prints a Markdown report on stdout; progress on stderr.
Usage: bench/onecore/run.py (mjpeg|rtsp) --lookout BIN [--loadgen BIN]
       [--frames DIR] [--counts "4 6 8"] [--window S] [--warmup S]
"""

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from proctree import tree  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLK_TCK = os.sysconf("SC_CLK_TCK")
SERVER_CPU = "0"


def say(msg):
    print(f"   {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url, timeout=5):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


# ------------------------------------------------------------------ /proc


def stat_fields(path):
    with open(path) as f:
        text = f.read()
    name = text[text.index("(") + 1:text.rindex(")")]
    return name, text.rsplit(")", 1)[1].split()




def threads(root):
    """{(pid, tid): (process name, thread name, ticks)} over the process tree."""
    out = {}
    for pid in tree(root):
        try:
            pname = stat_fields(f"/proc/{pid}/stat")[0]
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                tname, f = stat_fields(f"/proc/{pid}/task/{tid}/stat")
                out[(pid, tid)] = (pname, tname, int(f[11]) + int(f[12]))
            except (OSError, IndexError, ValueError):
                continue
    return out


def cpu_busy():
    """{cpu: busy ticks} from /proc/stat (everything but idle and iowait)."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            m = re.match(r"cpu(\d+) (.*)", line)
            if m:
                v = [int(x) for x in m.group(2).split()]
                out[m.group(1)] = sum(v[:8]) - v[3] - v[4]
    return out


def rss_kb(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def group(name):
    """A thread's group: its name without a trailing number (tokio-rt-worker,
    ffmpeg's threads...)."""
    return re.sub(r"[-_ ]*\d+$", "", name) or name


# ------------------------------------------------------------------ metrics


METRIC = re.compile(r'^(\w+)\{([^}]*)\} ([0-9.e+-]+|NaN)$')


def metrics(port):
    """{(metric, camera): value} of the per-camera series."""
    out = {}
    for line in get(f"http://127.0.0.1:{port}/metrics").decode().splitlines():
        m = METRIC.match(line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2)))
        if "camera" in labels and "le" not in labels and "stream" not in labels:
            try:
                out[(m.group(1), labels["camera"])] = float(m.group(3))
            except ValueError:
                pass
    return out


# ------------------------------------------------------------------ viewers


async def mp4_viewer(port, path, counts, key, stop):
    """Reads an fMP4 stream, counting `moof` boxes (one a frame)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    head = await reader.readuntil(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"{path}: {head.splitlines()[0]!r}")
    chunked = b"chunked" in head.lower()
    buf = bytearray()

    async def body():
        if not chunked:
            return await reader.read(65536)
        size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
        data = await reader.readexactly(size + 2)
        return data[:-2]

    while not stop.is_set():
        data = await body()
        if not data:
            break
        buf += data
        while len(buf) >= 8:
            size = int.from_bytes(buf[:4], "big")
            if size < 8 or len(buf) < size:
                break
            if bytes(buf[4:8]) == b"moof":
                counts[key] += 1
            del buf[:size]
    writer.close()


def run_mp4_viewers(port, paths, per, counts, stop, errors):
    async def all_viewers():
        tasks = []
        for path in paths:
            for i in range(per):
                key = (path, i)
                counts[key] = 0
                tasks.append(asyncio.create_task(mp4_viewer(port, path, counts, key, stop)))
        for t in tasks:
            try:
                await t
            except Exception as e:  # noqa: BLE001 - reported in the table
                errors.append(str(e))

    asyncio.run(all_viewers())


# ------------------------------------------------------------------ one count


def start_lookout(lookout, config, port, data, nice=None):
    """lookout pinned to the server's CPU, in its own session; at `nice`
    when given (below 0 needs root)."""
    prefix = ["nice", "-n", str(nice)] if nice is not None else []
    return subprocess.Popen(
        prefix + ["taskset", "-c", SERVER_CPU, lookout, "--config", config,
         "--listen", f"127.0.0.1:{port}", "--data-dir", data],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(os.path.dirname(config), "log"), "w"),
        start_new_session=True,
    )


def stop_tree(proc):
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def measure(a, n, cameras_toml, viewer_paths):
    """One fresh lookout with these cameras; returns the row's figures."""
    port = free_port()
    names = [f"c{i}" for i in range(1, n + 1)]
    with tempfile.TemporaryDirectory(prefix="onecore-") as tmp:
        config = os.path.join(tmp, "lookout.toml")
        with open(config, "w") as f:
            settings = list(a.setting)
            if a.person_min_score is not None:
                settings.append(f"person_min_score = {a.person_min_score}")
            if settings:
                f.write("[settings]\n" + "\n".join(settings) + "\n\n")
            f.write(cameras_toml)
        proc = start_lookout(a.lookout, config, port, os.path.join(tmp, "data"), a.nice)
        try:
            deadline = time.time() + 90
            for name in names:
                while True:
                    try:
                        if get(f"http://127.0.0.1:{port}/cams/{name}/snapshot.jpg"):
                            break
                    except OSError:
                        pass
                    if proc.poll() is not None or time.time() > deadline:
                        with open(os.path.join(tmp, "log")) as f:
                            sys.stderr.write(f.read()[-3000:])
                        raise RuntimeError(f"{n} cameras: {name} had no picture after 90 s")
                    time.sleep(0.2)
            say(f"{n} cameras: all up, a {a.warmup:.0f} s warm-up")
            time.sleep(a.warmup)
            return window(a, n, port, proc, names, viewer_paths)
        finally:
            stop_tree(proc)


def window(a, n, port, proc, names, viewer_paths):
    ramp = 2.0
    lg, stop, counts, errors, vt = None, threading.Event(), {}, [], None
    if a.mode == "mjpeg":
        cmd = [a.loadgen, "mjpeg", "--viewers", str(a.viewers), "--seconds", str(a.window),
               "--ramp", str(ramp)]
        for p in viewer_paths:
            cmd += ["--url", f"http://127.0.0.1:{port}{p}"]
        lg = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    else:
        vt = threading.Thread(target=run_mp4_viewers,
                              args=(port, viewer_paths, a.viewers, counts, stop, errors),
                              daemon=True)
        vt.start()
    time.sleep(ramp)
    m0, th0, cpu0, t0 = metrics(port), threads(proc.pid), cpu_busy(), time.monotonic()
    c0 = dict(counts)
    time.sleep(a.window - 0.5 if lg else a.window)
    m1, th1, cpu1, t1 = metrics(port), threads(proc.pid), cpu_busy(), time.monotonic()
    c1 = dict(counts)
    pids = tree(proc.pid)
    rss = rss_kb(pids)
    status = json.loads(get(f"http://127.0.0.1:{port}/status"))
    main_fps = []
    if a.mode == "rtsp":
        for c in names:
            st = json.loads(get(f"http://127.0.0.1:{port}/cams/{c}/status"))
            main_fps.append(((st.get("main_source") or {}).get("fps")) or 0.0)
    dt = t1 - t0
    viewer_fps = []
    if lg:
        out, err = lg.communicate(timeout=a.window + 60)
        try:
            res = json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise RuntimeError(f"loadgen: {err.strip()[-500:]}")
        for one in res.get("per_url", [res]):
            viewer_fps.append((one.get("fps_min") or 0.0, one.get("fps_median") or 0.0))
        fps_min = res.get("fps_min") or 0.0
        fps_med = res.get("fps_median") or 0.0
        viewers_err = res.get("errors") or res.get("error")
    else:
        stop.set()
        fps = [(c1.get(k, 0) - c0.get(k, 0)) / dt for k in c1]
        fps_min = min(fps) if fps else 0.0
        fps_med = statistics.median(fps) if fps else 0.0
        viewers_err = errors[0] if errors else None

    def rate(metric, cam):
        return (m1.get((metric, cam), 0) - m0.get((metric, cam), 0)) / dt

    frames = [rate("lookout_frames_total", c) for c in names]
    analysed = [rate("lookout_motion_analysis_seconds_count", c) for c in names]
    missed = [rate("lookout_motion_frames_missed_total", c) for c in names]
    # Of the frames each detector was due to analyse, the share it did.
    share = [x / (x + m) if x + m > 0 else 0.0 for x, m in zip(analysed, missed)]
    checks = sum(m1.get(("lookout_person_check_seconds_count", c), 0)
                 - m0.get(("lookout_person_check_seconds_count", c), 0) for c in names)
    skipped = sum(m1.get(("lookout_person_checks_skipped_total", c), 0)
                  - m0.get(("lookout_person_checks_skipped_total", c), 0) for c in names)
    checks_all = sum(m1.get(("lookout_person_check_seconds_count", c), 0) for c in names)
    person_up = all(m1.get(("lookout_person_check_available", c), 0) == 1 for c in names)
    ticks = {}
    total = 0
    for k, (pname, tname, t) in th1.items():
        d = t - th0.get(k, (pname, tname, t))[2]
        label = f"{pname}: {group(tname)}" if pname != "lookout" else group(tname)
        ticks[label] = ticks.get(label, 0) + d
        total += d
    busy = {c: (cpu1.get(c, 0) - cpu0.get(c, 0)) / CLK_TCK / dt for c in cpu1}
    need = a.fps * a.keep
    # The detector analyses fewer frames while nothing moves (and between
    # episodes), so the analyses a second differ between cameras out of phase
    # even on an idle core: the rule holds each detector against the frames
    # it was due to analyse (analysed plus missed), not against a rate. One
    # camera's rate alone (the reference, measured first) is shown beside it.
    ref = a.analysed_ref if a.analysed_ref is not None else statistics.median(analysed)
    keeps = (min(frames) >= need and min(share) >= a.keep and fps_min >= need
             and not viewers_err)
    row = {
        "cameras": n, "frames_min": min(frames), "frames_median": statistics.median(frames),
        "analysed_min": min(analysed), "analysed_median": statistics.median(analysed),
        "missed_max": max(missed), "share_min": min(share),
        "viewers": n * a.viewers, "viewer_fps_min": fps_min, "viewer_fps_median": fps_med,
        "viewers_error": viewers_err,
        "cpu": total / CLK_TCK / dt, "rss_mb": rss / 1024, "checks": checks, "skipped": skipped,
        "checks_all": checks_all, "person_up": person_up,
        "busy": busy, "threads": {k: v / CLK_TCK / dt for k, v in ticks.items()},
        "keeps": keeps, "window": dt, "analysed_ref": ref,
        "clip_recording": sum(m1.get(("lookout_clip_recording", c), 0) for c in names),
        "uptime_s": status.get("uptime_s"),
        "main_fps_min": min(main_fps) if main_fps else None,
    }
    say(f"{n} cameras: frames/s min {row['frames_min']:.2f}, analysed/s min "
        f"{row['analysed_min']:.2f}, missed/s max {row['missed_max']:.2f}, "
        f"viewers fps min {fps_min:.2f}, CPU {row['cpu']:.2f}, "
        f"cpu0 busy {busy.get('0', 0):.2f}, cpu1 busy {busy.get('1', 0):.2f}: "
        f"{'keeps full rate' if keeps else 'does NOT keep full rate'}")
    return row


# ------------------------------------------------------------------ modes


def mjpeg_cameras(feeder_port, n):
    out = ""
    for i in range(1, n + 1):
        out += (f'[[camera]]\nname = "c{i}"\n'
                f'source = "http://127.0.0.1:{feeder_port}/cam{i}.mjpg"\n\n')
    return out


def rtsp_cameras(main_url, sub_url, n):
    out = ""
    for i in range(1, n + 1):
        out += (f'[[camera]]\nname = "c{i}"\nsource = "{main_url}"\n'
                f'detect_source = "{sub_url}"\n\n')
    return out


def start_ready(cmd, what):
    """A helper process that prints `ready ...` once up; its stdin a pipe."""
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().split()
    if not line or line[0] != "ready":
        proc.kill()
        sys.exit(f"{what} did not start: {line}")
    return proc, line[1:]


def report(a, rows, machine):
    need = a.fps * a.keep
    kept = [r["cameras"] for r in rows if r["keeps"] and not r.get("reference")]
    best = max(kept) if kept else 0
    # The largest count kept with every smaller count measured also kept.
    held = 0
    for r in rows:
        if r.get("reference"):
            continue
        if not r["keeps"]:
            break
        held = r["cameras"]
    what = ("1280x720 10 fps MJPEG cameras (HTTP, the walkers)" if a.mode == "mjpeg" else
            f"RTSP cameras, H.264 main {a.rtsp_main} read undecoded, substream {a.rtsp_sub} "
            "decoded and detected on (one test camera, a session each)")
    viewers = ("/cams/NAME/stream.jpg (bench/loadgen.rs)" if a.mode == "mjpeg"
               else "/cams/NAME/live.mp4 (fMP4, a fragment a frame)")
    worst = a.person_min_score is not None
    print(f"\n### One core's budget: {a.mode.upper()} cameras"
          + (f", person_min_score {a.person_min_score:g}" if worst else "")
          + "".join(f", {x}" for x in a.setting) + "\n")
    print(f"{machine}\n")
    print(f"lookout on CPU {SERVER_CPU} (`taskset -c {SERVER_CPU}`, its children too"
          + (f"; at nice {a.nice}, so that other work on the machine yields the core to it, "
             "except the person check's thread, which sets itself to nice 10"
             if a.nice is not None else "; at nice 0, sharing the core with whatever else runs "
             "there") + "); "
          "cameras, viewers and this driver on the other CPU. "
          f"{what}; every camera at its default settings (motion detection, clips "
          f"with 5 s of pre-roll, the person check)"
          + (f", but person_min_score {a.person_min_score:g}: no check confirms a person, so "
             "the checks go on at up to 2 a second a camera (the worst case; at the defaults "
             "the first person found ends its episode's checks, and the walkers' episode "
             "never ends)" if worst else "")
          + f"; {a.viewers} viewers per camera on "
          f"{viewers}. A {a.warmup:.0f} s warm-up, then a {a.window:g} s window; one run "
          "per count" + (" (the window is two loops of the footage, so every camera's window "
                          "sees the same scene whatever its phase)" if a.mode == "mjpeg" else "")
          + f". Full rate: every camera's frames "
          f"received, and every viewer's frames, at least {need:.1f} a second ({a.keep:.0%} "
          f"of {a.fps:g}), and every camera's detector analysed at least {a.keep:.0%} of the "
          "frames it was due to analyse (the rest it missed, its previous analysis still "
          "running: `lookout_motion_frames_missed_total`). The detector analyses at most 10 "
          "a second, and half as many while nothing moves, so a camera's own rate is below "
          f"10 (one camera alone, the first row: {a.analysed_ref or 0:.2f} a second).\n")
    print("| cameras | frames/s received, min (median) | analysed/s, min (median) | "
          "missed/s, max | due frames analysed, min | viewers | "
          "viewer fps, min (median) | lookout CPU (cores) | CPU 0: others | CPU 1 busy | "
          "person checks in the window, run / skipped (run since start) | RSS (MB) | full rate |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for r in rows:
        err = f" ({r['viewers_error']})" if r["viewers_error"] else ""
        label = f"{r['cameras']} (reference)" if r.get("reference") else str(r["cameras"])
        print(f"| {label} | {r['frames_min']:.2f} ({r['frames_median']:.2f}) | "
              f"{r['analysed_min']:.2f} ({r['analysed_median']:.2f}) | "
              f"{r['missed_max']:.2f} | {r['share_min']:.1%} | {r['viewers']} | "
              f"{r['viewer_fps_min']:.2f} ({r['viewer_fps_median']:.2f}){err} | {r['cpu']:.2f} | "
              f"{max(0.0, r['busy'].get('0', 0) - r['cpu']):.2f} | {r['busy'].get('1', 0):.2f} | "
              f"{r['checks']:.0f} / {r['skipped']:.0f} ({r['checks_all']:.0f}"
              f"{'' if r['person_up'] else ', model not loaded'}) | {r['rss_mb']:.0f} | "
              f"{'yes' if r['keeps'] else '**no**'} |")
    if a.mode == "rtsp":
        print("\nThe main streams' rate as lookout measured it (`main_source.fps`, the lowest "
              "camera's): " + ", ".join(f"{r['cameras']} cameras {r['main_fps_min']:.1f} fps"
                                       for r in rows if r.get("main_fps_min") is not None)
              + ". Frames received and analysed are the substream's.")
    target = a.target
    verdict = ("met" if held >= target else "MISSED") if target else "no target"
    print(f"\n**{a.mode.upper()} cameras kept at full rate on one core: {held}"
          + (f" (the largest count kept: {best})" if best != held else "")
          + (f"; target at least {target}: {verdict}**" if target else "**"))
    # Where the core's time goes, at the largest count kept and the first missed.
    show = [r for r in rows if r["cameras"] == held and not r.get("reference")]
    show += [r for r in rows if not r["keeps"]][:1]
    for r in show:
        print(f"\nCPU 0's time by lookout's threads, grouped by name, at {r['cameras']} cameras "
              f"({'kept' if r['keeps'] else 'not kept'}; cores, the top 8):\n")
        print("| thread | cores | share |")
        print("|---|---:|---:|")
        top = sorted(r["threads"].items(), key=lambda kv: -kv[1])[:8]
        for name, cores in top:
            share = cores / r["cpu"] if r["cpu"] else 0
            print(f"| {name} | {cores:.3f} | {share:.0%} |")
    sys.stdout.flush()
    return held


def main():
    p = argparse.ArgumentParser(description="one core's budget")
    p.add_argument("mode", choices=("mjpeg", "rtsp"))
    p.add_argument("--lookout", required=True)
    p.add_argument("--loadgen", help="bench/loadgen.rs, built (mjpeg)")
    p.add_argument("--frames", help="the bench's JPEG folder with sequence.txt (mjpeg)")
    p.add_argument("--counts", default="4 8 12 16 24 32 48 64")
    # Two loops of the MJPEG footage (118 frames at 10 fps).
    p.add_argument("--window", type=float, default=23.6)
    p.add_argument("--warmup", type=float, default=15.0)
    p.add_argument("--viewers", type=int, default=2, help="viewers per camera")
    p.add_argument("--fps", type=float, default=10.0)
    p.add_argument("--keep", type=float, default=0.95)
    p.add_argument("--target", type=int, default=0, help="cameras to keep (0: none)")
    p.add_argument("--rtsp-main", default="1280x720@10")
    p.add_argument("--rtsp-sub", default="640x360@10")
    p.add_argument("--person-min-score", type=float,
                   help="e.g. 0.99: no check confirms, so the checks never stop (the worst case)")
    p.add_argument("--phase", type=int, default=7,
                   help="MJPEG: frames between one camera's picture and the next's (0: every "
                        "camera shows the same picture at the same time)")
    p.add_argument("--setting", action="append", default=[], metavar="KEY = VALUE",
                   help="another line of every camera's [settings] (TOML), e.g. 'motion_fps = 11'")
    p.add_argument("--nice", type=int,
                   help="start lookout at this nice value (e.g. -10, root: other work on "
                        "a shared machine then yields its core to lookout)")
    p.add_argument("--machine", default="")
    p.add_argument("--json", help="append each row here as a JSON line")
    a = p.parse_args()
    counts = [int(c) for c in a.counts.split()]
    helper = None
    if a.mode == "mjpeg":
        if not a.loadgen or not a.frames:
            sys.exit("mjpeg needs --loadgen and --frames")
        helper, ready = start_ready([sys.executable, os.path.join(ROOT, "bench/onecore/feeder.py"),
                                     "--frames", a.frames, "--fps", str(a.fps),
                                     "--phase", str(a.phase)], "the feeder")
        make = lambda n: mjpeg_cameras(int(ready[0]), n)  # noqa: E731
        paths = lambda n: [f"/cams/c{i}/stream.jpg" for i in range(1, n + 1)]  # noqa: E731
    else:
        helper, ready = start_ready(
            ["/usr/bin/python3", os.path.join(ROOT, "scripts/rtsp-server"), "--port", "0",
             "--main", a.rtsp_main, "--sub", a.rtsp_sub,
             "--file", os.path.join(ROOT, "testdata/footage/vtest.avi")], "the test camera")
        make = lambda n: rtsp_cameras(ready[0], ready[1], n)  # noqa: E731
        paths = lambda n: [f"/cams/c{i}/live.mp4" for i in range(1, n + 1)]  # noqa: E731
    rows, missed = [], 0
    try:
        a.analysed_ref = None
        say(f"{a.mode}: 1 camera, the reference for the analyses")
        ref = measure(a, 1, make(1), paths(1))
        ref["reference"] = True
        rows.append(ref)
        a.analysed_ref = ref["analysed_median"]
        for n in counts:
            say(f"{a.mode}: {n} cameras")
            row = measure(a, n, make(n), paths(n))
            if a.mode == "mjpeg":
                try:
                    row["feeder"] = json.loads(get(f"http://127.0.0.1:{ready[0]}/stats"))
                except OSError:
                    pass
            rows.append(row)
            if a.json:
                with open(a.json, "a") as f:
                    f.write(json.dumps({"mode": a.mode, **row}) + "\n")
            if not row["keeps"]:
                missed += 1
                if missed >= 2:
                    break
    finally:
        helper.stdin.close()
        helper.terminate()
        try:
            helper.wait(timeout=10)
        except subprocess.TimeoutExpired:
            helper.kill()
    held = report(a, rows, a.machine)
    return 0 if not a.target or held >= a.target else 3


if __name__ == "__main__":
    sys.exit(main())
