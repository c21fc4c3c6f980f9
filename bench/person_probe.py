"""One look at lookout's person check, for `scripts/bench --person-cost`.

Prints one JSON line: the check's counters from `/status` (`person.checks`,
`dropped`, `last_check_ms`, `enabled`), the wall clock, and every thread of
the server process with its name, nice value and CPU seconds so far
(`/proc/PID/task/*/stat`). Two probes around a window give the checks a
second in it and the CPU of the check's own thread, and show at what
priority each thread runs (the check's thread is meant to run at nice 10,
and any thread its model starts with it). Standard library only.
"""

import argparse
import json
import os
import time
import urllib.request


def threads(pid, clk_tck):
    out = []
    base = f'/proc/{pid}/task'
    for tid in sorted(os.listdir(base), key=int):
        try:
            with open(f'{base}/{tid}/stat') as f:
                stat = f.read()
        except OSError:
            continue  # the thread ended meanwhile
        # comm is in parentheses and may hold spaces: split after the last ')'.
        name = stat[stat.index('(') + 1:stat.rindex(')')]
        rest = stat[stat.rindex(')') + 2:].split()
        # Fields 14, 15 (utime, stime) and 19 (nice) of proc(5); rest[0] is field 3.
        utime, stime, nice = int(rest[11]), int(rest[12]), int(rest[16])
        out.append({'tid': int(tid), 'name': name, 'nice': nice,
                    'cpu_s': (utime + stime) / clk_tck})
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--url', required=True, help="lookout's base URL")
    ap.add_argument('--pid', type=int, required=True)
    ap.add_argument('--clk-tck', type=int, default=100)
    ap.add_argument('--label', action='append', default=[], help='key=value, repeatable')
    a = ap.parse_args()
    out = {'mode': 'person_probe', 't': time.time()}
    try:
        with urllib.request.urlopen(a.url.rstrip('/') + '/status', timeout=10) as r:
            person = json.load(r).get('person') or {}
        for key in ('available', 'enabled', 'checks', 'dropped', 'last_check_ms'):
            out[key] = person.get(key)
    except (OSError, ValueError) as e:
        out['error'] = f'/status: {e}'
    try:
        out['threads'] = threads(a.pid, a.clk_tck)
    except OSError as e:
        out['error'] = f'/proc/{a.pid}: {e}'
    for label in a.label:
        k, _, v = label.partition('=')
        out[k] = v
    print(json.dumps(out))


if __name__ == '__main__':
    main()
