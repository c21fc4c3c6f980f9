// The test RTSP camera (scripts/rtsp-server): a main stream and a substream.

import { spawn } from 'node:child_process';
import { resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const SCRIPT = resolve(here, '../../scripts/rtsp-server');
// It needs Debian's python3-gi, which only the system python has.
const PYTHON = process.env.RTSP_PYTHON || '/usr/bin/python3';
const START_TIMEOUT_MS = 30000;

/**
 * Starts the camera on a free port; resolves once it serves:
 * `{ main, sub, stop() }`. `args` adds flags (`['--codec', 'h265']`). It
 * also exits when its stdin closes, so a test run that dies takes it along.
 */
export async function startCamera({ args = [] } = {}) {
  const child = spawn(PYTHON, [SCRIPT, '--port', '0', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise((res) => child.once('exit', (code, signal) => res({ code, signal })));
  let urls;
  try {
    urls = await new Promise((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`rtsp-server did not start in time:\n${output}`)), START_TIMEOUT_MS);
      const collect = (chunk) => {
        output += chunk.toString();
        const m = /^ready (rtsp:\/\/\S+) (rtsp:\/\/\S+)$/m.exec(output);
        if (m) { clearTimeout(timer); res({ main: m[1], sub: m[2] }); }
      };
      child.stdout.on('data', collect);
      child.stderr.on('data', (chunk) => { output += chunk.toString(); });
      child.once('error', (e) => { clearTimeout(timer); rej(e); });
      exited.then(({ code }) => { clearTimeout(timer); rej(new Error(`rtsp-server exited (${code}):\n${output}`)); });
    });
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  }
  let stopped = false;
  return {
    ...urls,
    log: () => output,
    async stop() {
      if (stopped) return;
      stopped = true;
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}
