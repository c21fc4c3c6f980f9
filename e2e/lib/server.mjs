// Starts a real lookout on a free port with a throw-away data dir.

import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
export const LOOKOUT_BIN = process.env.LOOKOUT_BIN
  ? resolve(process.env.LOOKOUT_BIN)
  : resolve(here, '../../target/debug/lookout');

const START_TIMEOUT_MS = 15000;

/**
 * Runs lookout with `source` and resolves once it logs its address:
 * `{ url, port, dataDir, log(), stop() }`. `cameras` (`['yard=SOURCE', ...]`)
 * instead of `source` starts several cameras, one `--camera` each. `listen`
 * may name a fixed address (to restart on the same port); `args` and `env`
 * add flags and variables.
 */
export async function startLookout({ source, cameras = null, listen = '127.0.0.1:0', dataDir = null, args = [], env = {} } = {}) {
  const dir = dataDir ?? (await mkdtemp(join(tmpdir(), 'lookout-e2e-')));
  const sources = cameras ? cameras.flatMap((c) => ['--camera', c]) : ['--source', source];
  const child = spawn(LOOKOUT_BIN, ['--listen', listen, '--data-dir', dir, ...sources, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, RUST_LOG: process.env.RUST_LOG ?? 'info', NO_COLOR: '1', ...env },
  });
  let output = '';
  const collect = (chunk) => { output += chunk.toString(); };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);

  const exited = new Promise((res) => child.once('exit', (code, signal) => res({ code, signal })));
  let port;
  let scheme = 'http';
  try {
    port = await new Promise((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`lookout did not start in time:\n${output}`)), START_TIMEOUT_MS);
      const check = () => {
        // Tracing may colour the line; strip ANSI escapes before matching.
        // Under TLS (--tls-self-signed, --tls-cert) the line says https.
        const m = output.replace(/\x1b\[[0-9;]*m/g, '').match(/at (https?):\/\/127\.0\.0\.1:(\d+)\//);
        if (m) { clearTimeout(timer); scheme = m[1]; res(Number(m[2])); }
      };
      child.stdout.on('data', check);
      child.stderr.on('data', check);
      child.once('error', (e) => { clearTimeout(timer); rej(e); });
      exited.then(({ code }) => { clearTimeout(timer); rej(new Error(`lookout exited (${code}) before listening:\n${output}`)); });
    });
  } catch (e) {
    child.kill('SIGKILL');
    if (!dataDir) await rm(dir, { recursive: true, force: true });
    throw e;
  }

  let stopped = false;
  return {
    url: `${scheme}://127.0.0.1:${port}`,
    port,
    dataDir: dir,
    log: () => output,
    /** Stops lookout; `keepData` leaves the dir for a restart. */
    async stop({ keepData = false } = {}) {
      if (!stopped) {
        stopped = true;
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
          await exited;
          clearTimeout(timer);
        }
      }
      if (!keepData) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** JSON over HTTP against a running lookout. */
export async function api(server, path, { method = 'GET', body } = {}) {
  const res = await fetch(server.url + path, {
    method,
    headers: body ? { 'Content-Type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let data;
  try { data = JSON.parse(text); } catch { data = text; }
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return data;
}
