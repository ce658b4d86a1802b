// `BENCH_PARTS=portmap npm run bench -- reach` (issue 19, part 3), as root, in the namespace lab
// (bench/lib/netns.ts): two homes behind miniupnpd routers, one speaking PCP, NAT-PMP and UPnP IGD (the peer
// asks PCP first), one
// UPnP only. In each, the peer's port-mapping module makes and removes a mapping 20 times
// (`_portmap-probe.ts`). Figures: the time to a mapping, p50 and p99, per protocol, and the CPU
// the probe spent per mapping. The load average goes beside every figure.
import { execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { NetnsLab, netnsMissing } from '../lib/netns.js';

const MAPPINGS = 20;
const execFileAsync = promisify(execFile);
const load = () => Math.round(loadavg()[0]! * 10) / 10;
const emit = (name: string, value: number, unit: string) =>
  process.stdout.write(
    `${JSON.stringify({ name, value: Math.round(value * 100) / 100, unit, load1: load() })}\n`,
  );
const log = (msg: string) => process.stderr.write(`[reach portmap] ${msg}\n`);

const missing = netnsMissing(['ip', 'nft', 'tc', 'miniupnpd']);
if (missing !== '') {
  log(`SKIPPED: the port mapping benchmark needs root, ip, nft, tc and miniupnpd (${missing})`);
  process.exit(0);
}

const lab = new NetnsLab('portmap');
const scratch = join(tmpdir(), `coterie-reach-portmap-${lab.id}`);
try {
  for (const protocol of ['pcp', 'upnp'] as const) {
    const home = lab.addHome('upnp', 0);
    await lab.startMiniupnpd(home, join(scratch, protocol), { natpmp: protocol === 'pcp' });
    // Not spawnSync: miniupnpd's debug output comes to this process, and a loop that does not read
    // it fills the pipe until miniupnpd blocks (and stops answering).
    const probe = await execFileAsync(
      'ip',
      [
        ...['netns', 'exec', home.home, process.execPath, '--import', 'tsx'],
        fileURLToPath(new URL('./_portmap-probe.ts', import.meta.url)),
        ...[String(MAPPINGS), '4242'],
      ],
      { encoding: 'utf8', timeout: 120_000 },
    );
    const { times, protocols, errors } = JSON.parse(probe.stdout) as {
      times: number[];
      protocols: string[];
      errors: string[];
    };
    if (errors.length > 0) log(`${protocol}: mappings that failed: ${errors.length}, first: ${errors[0]}`);
    if (protocols.some((p) => p !== protocol)) log(`${protocol}: mapped by ${protocols.join(', ')}`);
    times.sort((a, b) => a - b);
    emit(`reach.portmap.${protocol}.ok`, times.length, `of ${MAPPINGS}`);
    if (times.length > 0) {
      emit(`reach.portmap.${protocol}.ms.p50`, times[Math.floor(times.length * 0.5)]!, 'ms');
      emit(`reach.portmap.${protocol}.ms.p99`, times[Math.ceil(times.length * 0.99) - 1]!, 'ms');
    }
  }
} finally {
  lab.cleanUp();
  rmSync(scratch, { recursive: true, force: true });
}
