// The set-up of a browser test of an IP camera: the test RTSP camera, a
// lookout reading its main stream with the given camera settings, and a
// browser; `stop()` ends all three and removes the config.

import { mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLookout } from './server.mjs';
import { startCamera } from './rtsp.mjs';
import { launch } from './browser.mjs';

/** Starts the camera, lookout (with `settings`, lines of a `[settings]` table) and a browser. */
export async function startRtspLookout(settings) {
  const rig = { confDir: await mkdtemp(join(tmpdir(), 'lookout-e2e-conf-')) };
  rig.stop = async () => {
    await rig.browser?.close();
    await rig.server?.stop();
    await rig.camera?.stop();
    await rm(rig.confDir, { recursive: true, force: true });
  };
  try {
    const conf = join(rig.confDir, 'lookout.toml');
    await writeFile(conf, `[settings]\n${settings}`);
    rig.camera = await startCamera();
    rig.server = await startLookout({ source: rig.camera.main, args: ['--config', conf] });
    rig.browser = await launch();
  } catch (e) {
    await rig.stop();
    throw e;
  }
  return rig;
}
