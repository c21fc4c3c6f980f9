#!/usr/bin/python3
"""CPU of an IP camera in lookout: native RTSP against the ffmpeg transcode.

One test camera (scripts/rtsp-server) serves the regression footage as a
1920x1080 H.264 main stream at 15 fps and a 640x360 substream at 10 fps.
Each configuration runs in a fresh lookout with detection on and no viewer,
and the CPU of lookout and every process it started (its ffmpeg children)
is read from /proc over a window:

  native      --source rtsp://.../main --detect-source rtsp://.../sub
              (the substream decoded by an ffmpeg child, the main stream
              read undecoded)
  native + 20 live.mp4 viewers: the same, with 20 clients reading the main
              stream over /live.mp4 (their cost is the difference)
  native + 1 /stream.jpg viewer: the same, with one MJPEG viewer (JPEGs
              are made of the decoded pictures only while someone watches)
  native-main --source rtsp://.../main (the main stream decoded)
  transcode   --source 'exec:ffmpeg -rtsp_transport tcp -i rtsp://.../main
              -c:v mjpeg -f mjpeg -' (the way before native RTSP)

The runs alternate, RUNS times each; medians are printed as a Markdown
table with the ratio to the transcode, and the frames lookout took in.
Usage: bench/rtsp/cpu.py LOOKOUT [--runs N] [--window S] [--person on|off]
"""

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from proctree import tree  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_ticks(pid):
    """utime + stime of one process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None




def status(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/status", timeout=5) as r:
        return json.load(r)


def live_viewer(port, stop, counted, path="/live.mp4"):
    """Reads `path` until `stop` is set, counting bytes."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", path)
    resp = conn.getresponse()
    while not stop.is_set():
        chunk = resp.read1(65536)
        if not chunk:
            break
        counted.append(len(chunk))
    conn.close()


def run_one(lookout, args, window, person, viewers=0, settle=5.0, path="/live.mp4"):
    port = free_port()
    with tempfile.TemporaryDirectory() as data:
        config = os.path.join(data, "lookout.toml")
        with open(config, "w") as f:
            f.write(f"[settings]\nperson_check = {'true' if person else 'false'}\n")
        proc = subprocess.Popen(
            [lookout, "--config", config, "--listen", f"127.0.0.1:{port}",
             "--data-dir", os.path.join(data, "d")] + args,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        try:
            deadline = time.time() + 60
            while True:
                try:
                    st = status(port)
                    if st["source"]["state"] == "running" and st["frames"] > 0:
                        break
                except OSError:
                    pass
                if time.time() > deadline or proc.poll() is not None:
                    raise RuntimeError(f"lookout {args} did not start")
                time.sleep(0.2)
            import threading
            stop, counted, threads = threading.Event(), [], []
            for _ in range(viewers):
                t = threading.Thread(target=live_viewer, args=(port, stop, counted, path),
                                     daemon=True)
                t.start()
                threads.append(t)
            time.sleep(settle)
            if viewers and not counted:
                raise RuntimeError("the live viewers got nothing")
            pids = tree(proc.pid)
            before = {p: cpu_ticks(p) for p in pids}
            frames0, t0 = status(port)["frames"], time.monotonic()
            time.sleep(window)
            after = {p: cpu_ticks(p) for p in pids}
            frames1, t1 = status(port)["frames"], time.monotonic()
            if any(after[p] is None for p in pids) or set(tree(proc.pid)) != set(pids):
                raise RuntimeError(f"the process tree changed during the window: {args}")
            ticks = sum(after[p] - before[p] for p in pids)
            stop.set()
            return ticks / CLK_TCK / (t1 - t0), (frames1 - frames0) / (t1 - t0)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("lookout")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--window", type=float, default=30.0)
    p.add_argument("--person", choices=("on", "off"), default="off")
    a = p.parse_args()
    server = subprocess.Popen(
        ["/usr/bin/python3", os.path.join(ROOT, "scripts/rtsp-server"), "--port", "0",
         "--main", "1920x1080@15", "--sub", "640x360@10",
         "--file", os.path.join(ROOT, "testdata/footage/vtest.avi")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )
    try:
        ready = server.stdout.readline().split()
        if len(ready) != 3 or ready[0] != "ready":
            sys.exit(f"the test camera did not start: {ready}")
        main_url, sub_url = ready[1], ready[2]
        configs = {
            "native": ["--source", main_url, "--detect-source", sub_url],
            "native + 20 live.mp4 viewers": ["--source", main_url, "--detect-source", sub_url],
            "native + 1 /stream.jpg viewer": ["--source", main_url, "--detect-source", sub_url],
            "native-main": ["--source", main_url],
            "transcode": ["--source", "exec:ffmpeg -loglevel error -rtsp_transport tcp -i "
                          f"{main_url} -c:v mjpeg -f mjpeg -"],
        }
        results = {name: [] for name in configs}
        for run in range(a.runs):
            for name, args in configs.items():
                viewers, path = 0, "/live.mp4"
                if "live.mp4" in name:
                    viewers = 20
                elif "stream.jpg" in name:
                    viewers, path = 1, "/stream.jpg"
                cpu, fps = run_one(a.lookout, args, a.window, a.person == "on", viewers,
                                   path=path)
                print(f"run {run + 1} {name}: {cpu:.3f} core, {fps:.1f} frames/s",
                      file=sys.stderr, flush=True)
                results[name].append((cpu, fps))
        base = statistics.median(c for c, _ in results["transcode"])
        print(f"\n1920x1080 H.264 main at 15 fps, 640x360 substream at 10 fps (the walkers, "
              f"looped); detection on, person check {a.person}, no viewer; "
              f"median of {a.runs} runs of {a.window:.0f} s\n")
        print("| configuration | CPU (cores) | against the transcode | frames/s taken in |")
        print("|---|---:|---:|---:|")
        for name, rows in results.items():
            cpu = statistics.median(c for c, _ in rows)
            fps = statistics.median(f for _, f in rows)
            print(f"| {name} | {cpu:.3f} | {cpu / base:.2f}x | {fps:.1f} |")
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
