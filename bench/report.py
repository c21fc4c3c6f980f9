"""Turns scripts/bench's JSON lines (one per loadgen measurement) into Markdown.

Each line carries `server`, `test` and `run` labels; a figure shown for a
(server, test) pair is the median over its runs. With --cameras, only the
several-cameras section (`scripts/bench --cameras`). Standard library only.
"""

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess

SERVERS = [('lookout', 'lookout'), ('seed', 'seed (microdot)'), ('motion', 'motion')]



def run_problems(rows, with_server=False):
    """One line per run that failed or had failing viewers (each named by
    its server too, with `with_server`)."""
    problems = []
    for r in rows:
        who = f'{r.get("server")} ' if with_server else ''
        if 'error' in r:
            problems.append(f'{who}{r.get("test")} run {r.get("run")}: {r["error"]}')
        elif r.get('errors'):
            problems.append(f'{who}{r.get("test")} run {r.get("run")}: {r["errors"]} viewer(s) failed, '
                            f'e.g. {r.get("first_error")}')
    return problems

def problems_block(rows, heading='Problems:', with_server=False):
    """The runs' problems (`run_problems`) as a Markdown block: the heading,
    one bullet each and a blank line; nothing when there are none."""
    problems = run_problems(rows, with_server)
    if not problems:
        return []
    return [heading, ''] + [f'- {x}' for x in problems] + ['']


def load(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith('{'):
                rows.append(json.loads(line))
    return rows


def median_of(rows, key):
    vals = [r[key] for r in rows if isinstance(r.get(key), (int, float))
            and not isinstance(r.get(key), bool)]
    return statistics.median(vals) if vals else None


def fmt(x, digits=1):
    if x is None:
        return '-'
    if digits == 0:
        return str(int(round(x)))
    return f'{x:.{digits}f}'


def ms(x):
    """Milliseconds with sensible precision."""
    if x is None:
        return '-'
    return f'{x:.2f}' if x < 10 else f'{x:.1f}' if x < 100 else f'{x:.0f}'


def machine():
    model = '?'
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    model = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        nproc = subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()
    except OSError:
        nproc = str(os.cpu_count())
    return nproc, model


def main():
    ap = argparse.ArgumentParser()
    for name in ('input', 'command', 'mode', 'seed-state', 'microdot', 'python',
                 'motion-state', 'motion-version', 'viewers', 'load-start', 'camera-counts',
                 'profile'):
        ap.add_argument('--' + name, default='')
    for name in ('runs', 'window', 'sse-subscribers', 'ws-count', 'wall', 'idle-window',
                 'ws-load-at', 'motion-max', 'frame-count', 'frame-kb', 'py-at', 'py-procs'):
        ap.add_argument('--' + name, type=float, default=0)
    ap.add_argument('--cameras', action='store_true',
                    help='only the several-cameras section (scripts/bench --cameras)')
    ap.add_argument('--clips', action='store_true',
                    help='only the clip-recording section (scripts/bench --clips)')
    ap.add_argument('--status', help='--clips: a /status of lookout recording, for its buffer')
    ap.add_argument('--person-cost', action='store_true',
                    help='only the person check\'s cost to streams and commands (scripts/bench --person-cost)')
    a = ap.parse_args()
    rows = load(a.input)
    if a.person_cost:
        print('\n'.join(person_cost_section(rows, a)))
        return
    if any(r.get('server') == 'lookout-before' for r in rows):
        SERVERS.insert(1, ('lookout-before', 'lookout before'))
    if a.clips:
        print('\n'.join(clips_section(rows, a)))
        return
    if a.cameras:
        print('\n'.join(cameras_section(rows, a)))
        return

    def sel(server, test):
        return [r for r in rows if r.get('server') == server and r.get('test') == test]

    def unavailable(server):
        if server == 'seed' and a.seed_state != 'ok':
            return a.seed_state
        if server == 'motion' and a.motion_state != 'ok':
            return a.motion_state
        if server == 'lookout-before':
            return None
        return None

    out = []
    p = out.append
    nproc, model = machine()
    now = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
    runs = int(a.runs)
    p(f'# lookout side-by-side benchmark, {now}')
    p('')
    p(f'- Machine: {nproc} CPUs (`nproc`), {model}, Linux {platform.release()}; '
      'servers and load generator share it, all on loopback. Load average (1/5/15 min) '
      f'at the start: {a.load_start or "?"}; at the end: {" ".join(open("/proc/loadavg").read().split()[:3])}.')
    p(f'- Command: `{a.command}` ({a.mode}: '
      + ('1 run' if runs == 1 else f'median of {runs} runs') +
      f'; {fmt(a.window, 0)} s per MJPEG window; wall time {fmt(a.wall, 0)} s, build included).')
    if a.frame_count:
        p(f'- Camera: real footage, {int(a.frame_count)} JPEGs of 1280x720 (mean {fmt(a.frame_kb, 0)} KB; '
          'the walkers of `testdata/footage/vtest.avi` scaled, with sensor noise, played forward then back) '
          'at 30 fps: lookout reads the folder with its `file:` source, the seed replays the same files; '
          'motion reads lookout\'s `/stream.jpg` over `netcam_url` and re-encodes.')
    seed_desc = (f'microdot {a.microdot} on CPython {a.python}, `bench/peers/seed_cam.py`'
                 if a.seed_state == 'ok' else a.seed_state)
    motion_desc = (f'motion {a.motion_version}, `stream_maxrate 30`, `framerate 30`'
                   if a.motion_state == 'ok' else a.motion_state)
    p(f'- Peers: seed = {seed_desc}; motion = {motion_desc}.')
    p('- CPU is the server\'s utime+stime per wall second over the window; RSS is the highest '
      'VmRSS polled every 100 ms in the window. Latency is a frame\'s age at arrival: the '
      'moment its part\'s last byte is read minus the part\'s `X-Timestamp` (the capture time; '
      'the bench\'s copy of the seed stamps its parts too, motion sends none); jitter is the '
      'standard deviation of inter-arrival gaps.')
    p('- Detection is on in both: lookout decodes and scores every frame (its person check is off: '
      'the seed has none); the seed\'s `compute_change` decodes each frame it analyses at 1/8 scale '
      '(Pillow) and counts changed pixels, about 13 frames a second (the tutorial\'s 50 ms sleep). '
      'lookout stores commands\' effects (`reset` writes the counter and an event to SQLite); the '
      'seed\'s reset only changes a dict. motion decodes, analyses and re-encodes every frame.')
    p('')

    # MJPEG
    viewers = [int(v) for v in a.viewers.split()]
    p('## MJPEG viewers (+ 1 stalled viewer that reads nothing)')
    p('')
    p('| viewers | server | fps min / median | MB/s | latency p50 / p99 ms | jitter / gap p99 ms '
      '| stalled viewer | CPU s/s | RSS MB | load generator CPU s/s |')
    p('|---:|---|---|---:|---|---|---|---:|---:|---:|')
    motion_max = int(a.motion_max) if a.motion_max else None
    for n in viewers:
        for key, label in SERVERS:
            why = unavailable(key)
            if key == 'motion' and not why and motion_max is not None and n > motion_max:
                continue
            if why:
                p(f'| {n} | {label} | {why} | | | | | | | |')
                continue
            rs = sel(key, f'mjpeg{n}')
            good = [r for r in rs if 'error' not in r]
            if not good:
                err = rs[0].get('error', 'no result') if rs else 'no result'
                p(f'| {n} | {label} | failed: {err} | | | | | | | |')
                continue
            lat50, lat99 = median_of(good, 'latency_ms_p50'), median_of(good, 'latency_ms_p99')
            lat = f'{ms(lat50)} / {ms(lat99)}' if lat50 is not None else 'n/a (no timestamp)'
            opens = [r.get('stalled_still_open') for r in good if 'stalled_still_open' in r]
            stalled = ('held open' if all(opens) else 'dropped' if not any(opens)
                       else 'mixed') if opens else '-'
            errs = sum(r.get('errors', 0) for r in good)
            fps = f'{fmt(median_of(good, "fps_min"))} / {fmt(median_of(good, "fps_median"))}'
            if errs:
                fps += f' ({errs} viewer errors)'
            p(f'| {n} | {label} | {fps} | {fmt(median_of(good, "mb_per_s"))} | {lat} '
              f'| {ms(median_of(good, "jitter_ms"))} / {ms(median_of(good, "gap_ms_p99"))} '
              f'| {stalled} | {fmt(median_of(good, "cpu_s_per_s"), 2)} '
              f'| {fmt(median_of(good, "rss_window_peak_mb"))} '
              f'| {fmt(median_of(good, "client_cpu_s_per_s"), 2)} |')
    p('')
    ceiling = [r for r in rows if r.get('server') == 'loopback' and r.get('test') == 'tcp'
               and 'error' not in r]
    if ceiling:
        c = ceiling[0]
        p(f'Loopback ceiling, same run: one writer thread sending {c.get("frame_kb")} KB buffers as fast as '
          f'the sockets take them to {c.get("readers")} raw TCP readers (`loadgen tcp`): '
          f'{fmt(median_of(ceiling, "mb_per_s"), 0)} MB/s in all, reader min / median '
          f'{fmt(median_of(ceiling, "reader_mb_per_s_min"))} / {fmt(median_of(ceiling, "reader_mb_per_s_median"))} MB/s.')
        p('')
    p(ratio_section(viewers, sel, unavailable))
    p('')
    p(delay_section(viewers, sel, unavailable))
    p('')
    if a.py_at:
        p(generators_section(int(a.py_at), int(a.py_procs), sel, unavailable))
        p('')

    # WebSocket
    p(f'## WebSocket `/control` command round trips ({int(a.ws_count)} in turn, `reset` and `ping` alternating)')
    p('')
    p('| when | server | all p50 / p99 / max ms | reset p50 / p99 ms | ping p50 / p99 ms | CPU s/s |')
    p('|---|---|---|---|---|---:|')
    ws_at = int(a.ws_load_at) if a.ws_load_at else viewers[-1]
    for test, when in (('ws_idle', 'idle'), ('ws_load', f'during {ws_at} viewers')):
        for key, label in SERVERS:
            why = unavailable(key)
            if key == 'motion' and not why:
                why = 'n/a (no command channel: motion has an HTTP webcontrol, no WebSocket)'
            if why:
                p(f'| {when} | {label} | {why} | | | |')
                continue
            rs = [r for r in sel(key, test) if 'error' not in r]
            if not rs:
                err = (sel(key, test) or [{}])[0].get('error', 'no result')
                p(f'| {when} | {label} | failed: {err} | | | |')
                continue
            ping = f'{ms(median_of(rs, "ping_rtt_ms_p50"))} / {ms(median_of(rs, "ping_rtt_ms_p99"))}'
            if key == 'seed':
                ping += ' (reply: unknown command)'
            p(f'| {when} | {label} | {ms(median_of(rs, "rtt_ms_p50"))} / {ms(median_of(rs, "rtt_ms_p99"))} / '
              f'{ms(median_of(rs, "rtt_ms_max"))} | {ms(median_of(rs, "reset_rtt_ms_p50"))} / '
              f'{ms(median_of(rs, "reset_rtt_ms_p99"))} | {ping} | {fmt(median_of(rs, "cpu_s_per_s"), 2)} |')
    p('')

    # SSE
    p(f'## One event to {int(a.sse_subscribers)} SSE subscribers (`GET /events`)')
    p('')
    p('| server | event, timed from | events timed | last receipt p50 / p99 / max ms '
      '| first receipt p50 ms | last receipt from the server\'s stamp p50 / p99 ms '
      '| missed receipts | CPU s/s | RSS MB |')
    p('|---|---|---:|---|---:|---|---:|---:|---:|')
    for key, label in SERVERS:
        if key == 'lookout-before':
            continue
        why = unavailable(key)
        if key == 'motion' and not why:
            why = 'n/a (no event stream)'
        if why:
            p(f'| {label} | {why} | | | | | | | |')
            continue
        how = ('`reset`, from sending `POST /control {"cmd":"reset"}`' if key == 'lookout'
               else '`motion` (no reset event in the seed), from the server\'s `ts` stamp')
        rs = [r for r in sel(key, 'sse') if 'error' not in r]
        if not rs:
            err = (sel(key, 'sse') or [{}])[0].get('error', 'no result')
            p(f'| {label} | {how} | failed: {err} | | | | | | |')
            continue
        done = sum(r.get('rounds_complete', 0) for r in rs)
        asked = sum(r.get('rounds', 0) for r in rs)
        p(f'| {label} | {how} | {done} of {asked} | {ms(median_of(rs, "last_ms_p50"))} / '
          f'{ms(median_of(rs, "last_ms_p99"))} / {ms(median_of(rs, "last_ms_max"))} '
          f'| {ms(median_of(rs, "first_ms_p50"))} '
          f'| {ms(median_of(rs, "from_stamp_ms_p50"))} / {ms(median_of(rs, "from_stamp_ms_p99"))} '
          f'| {fmt(median_of(rs, "missed_receipts"), 0)} '
          f'| {fmt(median_of(rs, "cpu_s_per_s"), 2)} | {fmt(median_of(rs, "rss_window_peak_mb"))} |')
    p('')

    # Targets
    p('## lookout against its targets (SPEC.md section 4)')
    p('')
    p('| target | measured | met |')
    p('|---|---|---|')

    def target(name, value, ok, note=''):
        if value is None:
            p(f'| {name} | not measured{note} | ? |')
        else:
            p(f'| {name} | {value}{note} | {"yes" if ok else "**no**"} |')

    big = 100 if 100 in viewers else viewers[-1]
    lk = [r for r in sel('lookout', f'mjpeg{big}') if 'error' not in r]
    fmin = median_of(lk, 'fps_min')
    note = '' if big >= 100 else f' (at {big} viewers; the target is for 100: run the full mode)'
    target('100 viewers at 720p30 each get >= 29 fps', None if fmin is None else f'min {fmin:.1f} fps',
           fmin is not None and fmin >= 29, note)
    cpu = median_of(lk, 'cpu_s_per_s')
    target('server CPU well under one core at 100 viewers', None if cpu is None else f'{cpu:.2f} s/s',
           cpu is not None and cpu < 0.5, note + ('; "well under" read as < 0.5' if cpu is not None else ''))
    for test, limit, when in (('ws_idle', 1.0, 'idle'), ('ws_load', 5.0, f'under load')):
        rs = [r for r in sel('lookout', test) if 'error' not in r]
        v = median_of(rs, 'rtt_ms_p99')
        detail = ''
        if v is not None:
            detail = (f' (`reset` alone {ms(median_of(rs, "reset_rtt_ms_p99"))} ms, '
                      f'`ping` alone {ms(median_of(rs, "ping_rtt_ms_p99"))} ms)')
        target(f'WebSocket round trip p99 < {limit:g} ms {when}', None if v is None else f'{v:.2f} ms{detail}',
               v is not None and v < limit, '' if test == 'ws_idle' else note)
    rs = [r for r in sel('lookout', 'sse') if 'error' not in r]
    v = median_of(rs, 'last_ms_p99')
    complete = all(r.get('rounds_complete') == r.get('rounds') for r in rs) if rs else False
    target('one event to 1,000 SSE subscribers, p99 < 20 ms', None if v is None else f'{v:.1f} ms',
           v is not None and v < 20 and complete, '' if complete or not rs else ' (some rounds incomplete)')
    for n, limit in DELAY_TARGETS:
        rs = [r for r in sel('lookout', f'mjpeg{n}') if 'error' not in r]
        v = median_of(rs, 'latency_ms_p99')
        target(f'frame age at arrival (capture to last byte) p99 <= {limit:g} ms at {n} viewers',
               None if v is None else f'{ms(v)} ms (p50 {ms(median_of(rs, "latency_ms_p50"))})',
               v is not None and v <= limit, '' if rs else f' (no {n}-viewer run)')
    lk_all = [r for r in rows if r.get('server') == 'lookout' and 'error' not in r
              and str(r.get('test', '')).startswith('mjpeg')]
    peaks = [r['rss_window_peak_mb'] for r in lk_all if isinstance(r.get('rss_window_peak_mb'), (int, float))]
    hwm = [r['rss_hwm_mb'] for r in lk_all if isinstance(r.get('rss_hwm_mb'), (int, float))]
    rss = max(peaks) if peaks else None
    sse_rss = median_of(rs, 'rss_window_peak_mb')
    target('RSS under 40 MB while streaming', None if rss is None else
           f'{rss:.1f} MB, highest in any MJPEG window (VmHWM since start {max(hwm):.1f} MB'
           + (f'; {sse_rss:.1f} MB with 1,000 SSE subscribers)' if sse_rss else ')'),
           rss is not None and rss < 40)
    p('')

    out.extend(problems_block(rows, '## Problems', with_server=True))
    print('\n'.join(out))


# Issue 32, item 5: p99 of a frame's age at arrival, at these viewer counts.
DELAY_TARGETS = ((100, 5.0), (500, 20.0))
DELAY_AT = (1, 100, 500)


def delay_section(viewers, sel, unavailable):
    """A frame's age when its last byte reaches a viewer, lookout beside the
    seed, at 1, 100 and 500 viewers (the counts of this run among them)."""
    out = ['## Capture-to-viewer delay', '',
           'A frame\'s age at arrival: the wall clock when the read that brings a part\'s last '
           'byte returns, minus the part\'s `X-Timestamp` (the server\'s capture time; the '
           'bench\'s copy of the seed stamps its parts when its capture loop takes the frame). '
           'Over every frame of every viewer in the window (`loadgen mjpeg`). Targets for '
           'lookout: p99 at most ' + ' and '.join(f'{t:g} ms at {n} viewers' for n, t in DELAY_TARGETS)
           + '. The load generator shares the machine, so its own queueing is in the figures.', '',
           '| viewers | lookout p50 / p99 ms | seed p50 / p99 ms | frames timed, lookout / seed '
           '| slowest viewer fps, lookout / seed | target | met |',
           '|---:|---|---|---|---|---|---|']
    targets = dict(DELAY_TARGETS)
    shown = [n for n in viewers if n in DELAY_AT]
    if not shown:
        return '\n'.join(out[:2] + ['Not measured: this run has none of '
                                    + ', '.join(str(n) for n in DELAY_AT) + ' viewers.'])
    for n in shown:
        cells = {}
        for key in ('lookout', 'seed'):
            why = unavailable(key)
            rs = [r for r in sel(key, f'mjpeg{n}') if 'error' not in r]
            if why or not rs:
                cells[key] = (why or 'no result', '-', '-')
                continue
            p50, p99 = median_of(rs, 'latency_ms_p50'), median_of(rs, 'latency_ms_p99')
            cells[key] = (f'{ms(p50)} / {ms(p99)}' if p50 is not None else 'n/a (no timestamp)',
                          fmt(median_of(rs, 'latency_n'), 0), fmt(median_of(rs, 'fps_min')))
        limit = targets.get(n)
        p99 = median_of([r for r in sel('lookout', f'mjpeg{n}') if 'error' not in r], 'latency_ms_p99')
        met = '-' if limit is None or p99 is None else ('yes' if p99 <= limit else '**no**')
        out.append(f'| {n} | {cells["lookout"][0]} | {cells["seed"][0]} '
                   f'| {cells["lookout"][1]} / {cells["seed"][1]} '
                   f'| {cells["lookout"][2]} / {cells["seed"][2]} '
                   f'| {"-" if limit is None else f"p99 <= {limit:g} ms"} | {met} |')
    return '\n'.join(out)


def generators_section(n, procs, sel, unavailable):
    """The saturation row measured by both load generators, lookout beside
    the seed, with the frame age next to the frame rate."""
    gens = (('mjpeg', '`loadgen mjpeg` (Rust, tokio + reqwest; + 1 stalled viewer)'),
            ('py_mjpeg', f'`loadgen.py` (Python asyncio streams, {procs} processes)'))
    out = [f'## Saturation by two load generators ({n} viewers)', '',
           'The same load from two load generators that share no code, language or HTTP '
           'library, one after the other against the same server process. Frame age is the '
           'age at arrival above; newest-wins keeps it low while the rate drops.', '',
           '| server | load generator | fps min / median | frame age p50 / p99 ms | MB/s '
           '| server CPU s/s | server RSS MB | load generator CPU s/s |',
           '|---|---|---|---|---:|---:|---:|---:|']
    figures = {}
    for key in ('lookout', 'seed'):
        why = unavailable(key)
        for test, gen in gens:
            if why:
                out.append(f'| {key} | {gen} | {why} | | | | | |')
                continue
            rs = sel(key, f'{test}{n}')
            good = [r for r in rs if 'error' not in r]
            if not good:
                err = rs[0].get('error', 'no result') if rs else 'no result'
                out.append(f'| {key} | {gen} | failed: {err} | | | | | |')
                continue
            f = {k: median_of(good, k) for k in ('fps_min', 'fps_median', 'latency_ms_p50', 'latency_ms_p99',
                                                  'mb_per_s', 'cpu_s_per_s', 'rss_window_peak_mb',
                                                  'client_cpu_s_per_s')}
            figures[(key, test)] = f
            errs = sum(r.get('errors', 0) for r in good)
            out.append(f'| {key} | {gen} | {fmt(f["fps_min"])} / {fmt(f["fps_median"])}'
                       + (f' ({errs} viewer errors)' if errs else '')
                       + f' | {ms(f["latency_ms_p50"])} / {ms(f["latency_ms_p99"])} | {fmt(f["mb_per_s"], 0)} '
                       f'| {fmt(f["cpu_s_per_s"], 2)} | {fmt(f["rss_window_peak_mb"])} '
                       f'| {fmt(f["client_cpu_s_per_s"], 2)} |')
    out += ['', '| load generator | slowest viewer lookout / seed | MB/s lookout / seed '
            '| frame age p99 lookout / seed | lookout meets item 6 (bytes and slowest viewer >= seed\'s) |',
            '|---|---:|---:|---:|---|']
    for test, gen in gens:
        lk, sd = figures.get(('lookout', test)), figures.get(('seed', test))
        if not lk or not sd:
            continue

        def ratio(k):
            return lk[k] / sd[k] if lk[k] is not None and sd[k] else None
        fr, mr = ratio('fps_min'), ratio('mb_per_s')
        ok = fr is not None and mr is not None and fr >= 1 and mr >= 1
        out.append(f'| {gen} | {fmt(fr, 2)} | {fmt(mr, 2)} | {fmt(ratio("latency_ms_p99"), 2)} '
                   f'| {"yes" if ok else "**no**"} |')
    return '\n'.join(out)


def ratio_section(viewers, sel, unavailable):
    """lookout against the seed, per viewer count: CPU, delivered bytes,
    slowest viewer and memory, and issue 17's targets for each."""
    out = ['## lookout / seed', '',
           'Ratios of the medians above. Targets: CPU at most half the seed\'s from 50 to 200 '
           'viewers and at most the seed\'s beyond; at 400 viewers and more, every lookout viewer '
           'at least the seed\'s slowest, total bytes at least the seed\'s and RSS at most 64 MB.', '',
           '"Floor / seed" is the CPU of the plainest possible sender of the same frames '
           '(bench/send_floor.py: one thread, blocking writes, no HTTP, no detection) against the '
           'seed\'s: what the kernel charges for the bytes alone, under which no server goes. '
           '"sendfile" is the same with each frame in a memfd sent by sendfile(2).', '',
           '| viewers | CPU lookout / seed | floor / seed (write, sendfile) | MB/s lookout / seed '
           '| slowest viewer fps, lookout vs seed | RSS MB, lookout vs seed | targets met |',
           '|---:|---:|---|---:|---|---|---|']
    if unavailable('seed'):
        return '\n'.join(out[:2] + [f'Seed not measured: {unavailable("seed")}.'])
    for n in viewers:
        lk = [r for r in sel('lookout', f'mjpeg{n}') if 'error' not in r]
        sd = [r for r in sel('seed', f'mjpeg{n}') if 'error' not in r]
        if not lk or not sd:
            continue
        cpu_l, cpu_s = median_of(lk, 'cpu_s_per_s'), median_of(sd, 'cpu_s_per_s')
        mb_l, mb_s = median_of(lk, 'mb_per_s'), median_of(sd, 'mb_per_s')
        fps_l, fps_s = median_of(lk, 'fps_min'), median_of(sd, 'fps_min')
        rss_l, rss_s = median_of(lk, 'rss_window_peak_mb'), median_of(sd, 'rss_window_peak_mb')

        def ratio(x, y):
            return x / y if x is not None and y else None
        cpu_r, mb_r = ratio(cpu_l, cpu_s), ratio(mb_l, mb_s)
        met = []
        if cpu_r is not None and 50 <= n <= 200:
            met.append(f'CPU <= 0.5: {"yes" if cpu_r <= 0.5 else "**no**"}')
        if n >= 400:
            if cpu_r is not None:
                met.append(f'CPU <= 1: {"yes" if cpu_r <= 1 else "**no**"}')
            if fps_l is not None and fps_s is not None:
                met.append(f'min fps: {"yes" if fps_l >= fps_s else "**no**"}')
            if mb_r is not None:
                met.append(f'bytes: {"yes" if mb_r >= 1 else "**no**"}')
            if rss_l is not None:
                met.append(f'RSS <= 64: {"yes" if rss_l <= 64 else "**no**"}')
        floors = []
        for how in ('write', 'sendfile'):
            fl = [r for r in sel('floor', f'floor_{how}{n}') if 'error' not in r]
            floors.append(fmt(ratio(median_of(fl, 'cpu_s_per_s'), cpu_s), 2) if fl else '-')
        out.append(f'| {n} | {fmt(cpu_r, 2)} | {", ".join(floors)} | {fmt(mb_r, 2)} | {fmt(fps_l)} vs {fmt(fps_s)} '
                   f'| {fmt(rss_l)} vs {fmt(rss_s)} | {"; ".join(met) or "-"} |')
    return '\n'.join(out)


def clips_section(rows, a):
    """The cost of recording clips: `clips_true` against `clips_false` rows."""
    out = []
    p = out.append
    nproc, model = machine()
    now = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
    runs = int(a.runs)

    def sel(test):
        return [r for r in rows if r.get('server') == 'lookout' and r.get('test') == test
                and 'error' not in r]

    p(f'## Recording clips, {now}')
    p('')
    p(f'- Machine: {nproc} CPUs (`nproc`), {model}, Linux {platform.release()}. Load average '
      f'(1/5/15 min) at the start: {a.load_start or "?"}; at the end: '
      f'{" ".join(open("/proc/loadavg").read().split()[:3])}.')
    p(f'- Command: `{a.command}` (' + ('1 run' if runs == 1 else f'median of {runs} runs') +
      f'; wall time {fmt(a.wall, 0)} s, build included). Each row is a fresh lookout on '
      'a `file:` replay of 20 s of ffmpeg\'s `testsrc2` at 1280x720, 30 fps, as MJPEG (always '
      'moving, so one clip is recorded all along; each frame read anew, as from a camera), '
      f'measured for {fmt(a.window, 0)} s with no viewer after a 25 s '
      'warm-up, with `record_clips` on (the default: 5 s pre-roll at 10 fps) and off.')
    p('- CPU is lookout\'s utime+stime per wall second; RSS the highest VmRSS in the window.')
    p('')
    p('| record_clips | CPU s/s | RSS MB |')
    p('|---|---:|---:|')
    cpu, rss = {}, {}
    for on in ('true', 'false'):
        rs = sel(f'clips_{on}')
        if not rs:
            p(f'| {on} | failed | |')
            continue
        cpu[on] = median_of(rs, 'cpu_s_per_s')
        rss[on] = median_of(rs, 'rss_window_peak_mb')
        p(f'| {"on" if on == "true" else "off"} | {fmt(cpu[on], 3)} | {fmt(rss[on])} |')
    if len(cpu) == 2:
        p(f'| **recording costs** | **{fmt(cpu["true"] - cpu["false"], 3)}** '
          f'| **{fmt(rss["true"] - rss["false"])}** |')
    if a.status:
        try:
            clips = json.load(open(a.status)).get('clips', {})
            p('')
            p(f'- The pre-roll buffer while recording (`/status`): {clips.get("buffer_frames")} '
              f'frames, {fmt(clips.get("buffer_bytes", 0) / 1e6)} MB, '
              f'{fmt(clips.get("buffer_s", 0))} s; frames dropped for a slow disk: '
              f'{clips.get("dropped_frames")}.')
        except (OSError, ValueError):
            pass
    return out


def cameras_section(rows, a):
    """Several cameras in one lookout against one camera, each idle and with
    the same viewers per camera; `cams{n}_idle` and `cams{n}_view` rows."""
    out = []
    p = out.append
    nproc, model = machine()
    now = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
    runs = int(a.runs)
    counts = [int(n) for n in a.camera_counts.split()]
    per = int(a.viewers)

    def sel(test):
        return [r for r in rows if r.get('server') == 'lookout' and r.get('test') == test
                and 'error' not in r]

    def cams(n):
        return f'{n} camera' + ('' if n == 1 else 's')

    p(f'## Several cameras in one lookout, {now}')
    p('')
    p(f'- Machine: {nproc} CPUs (`nproc`), {model}, Linux {platform.release()}; lookout and the '
      f'load generator share it, on loopback. Load average (1/5/15 min) at the start: '
      f'{a.load_start or "?"}; at the end: {" ".join(open("/proc/loadavg").read().split()[:3])}.')
    p(f'- Command: `{a.command}` (' + ('1 run' if runs == 1 else f'median of {runs} runs') +
      f'; wall time {fmt(a.wall, 0)} s, build included). Each row is a fresh lookout with '
      '`--camera c1=\'synthetic:?size=1280x720&fps=30&motion=periodic\'` ... one per camera, '
      'measured after one 25 s warm-up cycle of its scenes: a '
      f'{fmt(a.idle_window, 0)} s window with no viewer (capture, encoding and motion analysis '
      f'alone), then {fmt(a.window, 0)} s with {per} viewers on each camera\'s '
      '`/cams/NAME/stream.jpg` (one load generator, no stalled viewer).')
    p('- fps is per viewer in the window (the scene makes 30); per camera, the minimum and the '
      f'median over its {per} viewers. CPU is lookout\'s utime+stime per wall second; RSS the '
      'highest VmRSS polled every 100 ms in the window.')
    p('')
    p('| cameras | viewers | fps min / median, per camera | MB/s | latency p50 / p99 ms '
      '| CPU s/s | RSS MB |')
    p('|---:|---|---|---:|---|---:|---:|')
    cpu, rss = {}, {}
    for n in counts:
        for kind in ('idle', 'view'):
            rs = sel(f'cams{n}_{kind}')
            if not rs:
                errs = [r for r in rows if r.get('test') == f'cams{n}_{kind}' and 'error' in r]
                why = errs[0]['error'] if errs else 'no result'
                p(f'| {n} | {"none" if kind == "idle" else per} | failed: {why} | | | | |')
                continue
            cpu[n, kind] = median_of(rs, 'cpu_s_per_s')
            rss[n, kind] = median_of(rs, 'rss_window_peak_mb')
            tail = f'| {fmt(cpu[n, kind], 2)} | {fmt(rss[n, kind])} |'
            if kind == 'idle':
                p(f'| {n} | none | - | - | - {tail}')
                continue
            if n == 1:
                fps = f'c1 {fmt(median_of(rs, "fps_min"))} / {fmt(median_of(rs, "fps_median"))}'
            else:
                parts = []
                for i in range(n):
                    one = [r['per_url'][i] for r in rs if len(r.get('per_url', [])) > i]
                    name = one[0]['url'].rstrip('/').split('/')[-2] if one else f'#{i + 1}'
                    parts.append(f'{name} {fmt(median_of(one, "fps_min"))} / '
                                 f'{fmt(median_of(one, "fps_median"))}')
                fps = '; '.join(parts)
            errs = sum(r.get('errors', 0) for r in rs)
            if errs:
                fps += f' ({errs} viewer errors)'
            viewers = f'{per}' if n == 1 else f'{per} per camera ({per * n})'
            p(f'| {n} | {viewers} | {fps} | {fmt(median_of(rs, "mb_per_s"))} '
              f'| {ms(median_of(rs, "latency_ms_p50"))} / {ms(median_of(rs, "latency_ms_p99"))} {tail}')
    p('')
    if len(counts) >= 2:
        lo, hi = counts[0], counts[-1]
        lines = []
        for kind, what in (('view', f'{per} viewers per camera'), ('idle', 'no viewer')):
            c0, c1 = cpu.get((lo, kind)), cpu.get((hi, kind))
            r0, r1 = rss.get((lo, kind)), rss.get((hi, kind))
            if None in (c0, c1, r0, r1) or not c0 or not r0:
                continue
            lines.append(f'- {cams(hi)} against {cams(lo)}, {what}: CPU {c1:.2f} against {c0:.2f} s/s '
                         f'(x{c1 / c0:.1f}), RSS {r1:.1f} against {r0:.1f} MB '
                         f'(x{r1 / r0:.2f}, {r1 - r0:+.1f} MB).')
        out.extend(lines)
        if lines:
            p('')
    out.extend(problems_block(r for r in rows if str(r.get('test', '')).startswith('cams')))
    return out


# Issue 32, item 7: with the person check on, `reset` p99 at most this times
# its figure with the check off, and the saturation row within this fraction.
PERSON_RESET_RATIO = 1.2
PERSON_SAT_MARGIN = 0.05


def person_cost_section(rows, a):
    """The person check on against off: `ws_idle_{on}`, `ws_load_{on}`,
    `mjpeg{n}_{on}` rows and `probe_{on}` probes around each window."""
    out = []
    p = out.append
    nproc, model = machine()
    now = datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
    runs = int(a.runs)
    sat, at = int(float(a.viewers)), int(a.ws_load_at)
    states = ('true', 'false')

    def sel(test, run=None):
        return [r for r in rows if r.get('server') == 'lookout' and r.get('test') == test
                and 'error' not in r and (run is None or r.get('run') == str(run))]

    def probes(on, run, at0, at1):
        """Checks a second, checks dropped and the check thread's CPU s/s
        between two probes of one run."""
        ps = {r.get('at'): r for r in sel(f'probe_{on}', run)}
        p0, p1 = ps.get(at0), ps.get(at1)
        if not p0 or not p1 or p1['t'] <= p0['t']:
            return None
        dt = p1['t'] - p0['t']

        def check_cpu(pr):
            return sum(t['cpu_s'] for t in pr.get('threads', []) if t['name'].startswith('person'))
        return {'checks_per_s': ((p1.get('checks') or 0) - (p0.get('checks') or 0)) / dt,
                'dropped': (p1.get('dropped') or 0) - (p0.get('dropped') or 0),
                'check_cpu': (check_cpu(p1) - check_cpu(p0)) / dt,
                'last_check_ms': p1.get('last_check_ms')}

    def fig(on, run):
        """One run's figures for one state (None where missing)."""
        f = {}
        for key, test in (('idle', f'ws_idle_{on}'), ('load', f'ws_load_{on}')):
            rs = sel(test, run)
            f[key + '_p50'] = median_of(rs, 'reset_rtt_ms_p50')
            f[key + '_p99'] = median_of(rs, 'reset_rtt_ms_p99')
        rs = sel(f'mjpeg{sat}_{on}', run)
        f['fps_min'] = median_of(rs, 'fps_min')
        f['mb_s'] = median_of(rs, 'mb_per_s')
        f['cpu'] = median_of(rs, 'cpu_s_per_s')
        f['errors'] = sum(r.get('errors', 0) for r in rs)
        for window, (a0, a1) in (('idle', ('idle0', 'idle1')), ('load', ('load0', 'load1')),
                                 ('sat', ('sat0', 'sat1'))):
            pr = probes(on, run, a0, a1)
            f[window + '_checks'] = pr and pr['checks_per_s']
            f[window + '_check_cpu'] = pr and pr['check_cpu']
            f[window + '_dropped'] = pr and pr['dropped']
            if window == 'sat' and pr:
                f['last_check_ms'] = pr['last_check_ms']
        cpu, check_cpu = f['cpu'], f['sat_check_cpu']
        f['cpu_rest'] = None if cpu is None or check_cpu is None else cpu - check_cpu
        return f

    per_run = {(on, run): fig(on, run) for run in range(1, runs + 1) for on in states}

    def med(on, key):
        vals = [per_run[on, run][key] for run in range(1, runs + 1)
                if per_run[on, run].get(key) is not None]
        return statistics.median(vals) if vals else None

    p(f'## The person check against streams and commands, {now}')
    p('')
    p(f'- Machine: {nproc} CPUs (`nproc`), {model}, Linux {platform.release()}; lookout and the '
      f'load generator share it, on loopback, with whatever else runs. Load average (1/5/15 min) '
      f'at the start: {a.load_start or "?"}; at the end: '
      f'{" ".join(open("/proc/loadavg").read().split()[:3])}.')
    p(f'- Command: `{a.command}` (' + ('1 run' if runs == 1 else f'median of {runs} runs') +
      f'; cargo profile `{a.profile or "release"}`; wall time {fmt(a.wall, 0)} s, build included). '
      'lookout alone (no peer), a fresh process for each row, `person_check = true` (its '
      'defaults: at most 2 checks a second, one at a time on a thread at nice 10; but '
      '`person_min_score = 0.99`, so that no check confirms and the checks never stop, the '
      'worst case) and `false`, the order alternating between runs.')
    if a.frame_count:
        p(f'- Camera: the full mode\'s footage, {int(a.frame_count)} JPEGs of 1280x720 (mean '
          f'{fmt(a.frame_kb, 0)} KB) of the walkers of `testdata/footage/vtest.avi` at 30 fps through '
          'the `file:` source: people walk all along, so motion never stops and a check keeps being due. '
          '(At the defaults the first person found ends its episode\'s checks, and this episode '
          'never ends: one check in all.)')
    p(f'- `reset`: {int(a.ws_count)} WebSocket round trips on `/control`, `reset` and `ping` in turn '
      f'(the `reset` figures are over its {int(a.ws_count) // 2}), idle (no viewer) and during a '
      f'{fmt(a.window, 0)} s window of {at} MJPEG viewers. Saturation: {sat} viewers on '
      f'`/stream.jpg` for {fmt(a.window, 0)} s: the slowest viewer\'s fps, MB/s in all, lookout\'s '
      'CPU s/s, and that CPU without the check\'s own thread (`/proc/PID/task/*/stat`).')
    if os.environ.get('BENCH_PERSON_NICE'):
        p(f'- **A control: the check\'s thread reniced to {os.environ["BENCH_PERSON_NICE"]}** '
          '(`BENCH_PERSON_NICE`) once it had started, not its own nice 10.')
    p('- Checks/s: `/status` `person.checks` before and after each window, over its length.')
    p('')
    p('| run | check | reset idle p50 / p99 ms | checks/s idle | reset under '
      f'{at} viewers p50 / p99 ms | checks/s | {sat} viewers: slowest fps | MB/s | CPU s/s '
      '| CPU without the check | checks/s | check ms (last) |')
    p('|---:|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|')

    def row(label_run, on, f):
        errs = f' ({f["errors"]} viewer errors)' if f.get('errors') else ''
        last = f.get('last_check_ms')
        p(f'| {label_run} | {"on" if on == "true" else "off"} '
          f'| {ms(f["idle_p50"])} / {ms(f["idle_p99"])} | {fmt(f["idle_checks"], 2)} '
          f'| {ms(f["load_p50"])} / {ms(f["load_p99"])} | {fmt(f["load_checks"], 2)} '
          f'| {fmt(f["fps_min"])}{errs} | {fmt(f["mb_s"], 0)} | {fmt(f["cpu"], 2)} '
          f'| {fmt(f["cpu_rest"], 2)} | {fmt(f["sat_checks"], 2)} '
          f'| {"-" if last is None else ms(last)} |')

    for run in range(1, runs + 1):
        for on in states:
            row(str(run), on, per_run[on, run])
    if runs > 1:
        for on in states:
            f = {k: med(on, k) for k in per_run[on, 1]}
            f['errors'] = 0
            row('median', on, f)
    p('')

    def ratio(x, y):
        return None if x is None or y is None or y == 0 else x / y

    p('Check on against off (medians across runs; each run\'s own ratio in brackets):')
    p('')
    p('| figure | on | off | on / off | target | met |')
    p('|---|---:|---:|---:|---|---|')
    verdicts = []
    for key, what, digits, rule in (
            ('idle_p99', '`reset` p99 idle, ms', None, 'reset'),
            ('load_p99', f'`reset` p99 under {at} viewers, ms', None, 'reset'),
            ('fps_min', f'slowest viewer at {sat}, fps', 1, 'sat'),
            ('mb_s', f'MB/s at {sat}', 0, 'sat'),
            ('cpu_rest', f'CPU at {sat} without the check\'s thread, s/s', 2, 'cpu'),
            ('cpu', f'CPU at {sat}, s/s (the check\'s own included)', 2, None)):
        on_v, off_v = med('true', key), med('false', key)
        r = ratio(on_v, off_v)
        each = [ratio(per_run['true', run][key], per_run['false', run][key])
                for run in range(1, runs + 1)]
        each_s = ', '.join('-' if x is None else f'{x:.2f}' for x in each)
        show = (lambda v: ms(v)) if digits is None else (lambda v: fmt(v, digits))
        if rule == 'reset':
            target, ok = f'<= {PERSON_RESET_RATIO:g}x', r is not None and r <= PERSON_RESET_RATIO
        elif rule == 'sat':
            target, ok = f'>= {1 - PERSON_SAT_MARGIN:.2f}x', r is not None and r >= 1 - PERSON_SAT_MARGIN
        elif rule == 'cpu':
            target, ok = f'<= {1 + PERSON_SAT_MARGIN:.2f}x', r is not None and r <= 1 + PERSON_SAT_MARGIN
        else:
            target, ok = '-', None
        met = '-' if ok is None else ('?' if r is None else 'yes' if ok else '**no**')
        if ok is not None:
            verdicts.append(ok)
        p(f'| {what} | {show(on_v)} | {show(off_v)} | '
          f'{"-" if r is None else f"{r:.2f}"} ({each_s}) | {target} | {met} |')
    p('')
    busy = [per_run['true', run][w + '_checks'] for run in range(1, runs + 1)
            for w in ('idle', 'load', 'sat')]
    if busy and all(x is not None and x > 0 for x in busy):
        p(f'- The check ran in every window with it on: {min(busy):.2f} to {max(busy):.2f} checks a '
          'second.')
    else:
        p('- **The check did not run in every window with it on** (checks/s above): '
          'those windows do not measure its cost.')
    off = [per_run['false', run][w + '_checks'] for run in range(1, runs + 1)
           for w in ('idle', 'load', 'sat')]
    if any(x for x in off):
        p('- **Checks ran with it off.**')
    nice = {}
    for r in sel('probe_true'):
        for t in r.get('threads', []):
            nice.setdefault(t['name'], set()).add(t['nice'])
    if nice:
        p('- Threads of lookout with the check on, and their nice values: '
          + ', '.join(f'{name} {"/".join(str(n) for n in sorted(v))}'
                      for name, v in sorted(nice.items())) + '.')
    p(f'- Targets (issue 32, item 7): `reset` p99 at most {PERSON_RESET_RATIO:g}x with the check on; '
      f'the saturation row within {PERSON_SAT_MARGIN:.0%} (fps and MB/s not below, the CPU of '
      'everything but the check not above). '
      + ('All met.' if verdicts and all(verdicts) else 'Not all met.'))
    block = problems_block(rows)
    out.extend([''] + block if block else [''])
    return out


if __name__ == '__main__':
    main()
