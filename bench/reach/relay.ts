// `BENCH_PARTS=relay npm run bench -- reach` (issue 19), as root, in the namespace lab
// (bench/lib/netns.ts): two seeders whose home uplinks are shaped to the same 100 Mbit/s, one
// behind a full-cone router (downloaded directly) and one behind a port-restricted one (through
// the tracker's relay), and a downloader on the public side. Figures: each download's rate and
// the relayed one as a share of the direct one, the relay's circuit connect time (p50, p99), and
// which NAT pairs a direct TCP connection crosses. The load average goes beside every figure.
import { spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type Home, type NatType, NetnsLab, netnsMissing, PUBLIC_PEER } from '../lib/netns.js';
import { randomFile } from '../lib/random-file.js';

const MBIT = 100;
const FILE_BYTES = 48 * 1024 * 1024;
const CIRCUITS = 20;
const load = () => Math.round(loadavg()[0]! * 10) / 10;
const emit = (name: string, value: number, unit: string) =>
  process.stdout.write(
    `${JSON.stringify({ name, value: Math.round(value * 100) / 100, unit, load1: load() })}\n`,
  );
const log = (msg: string) => process.stderr.write(`[reach relay] ${msg}\n`);

const missing = netnsMissing();
if (missing !== '') {
  log(
    `SKIPPED: the reach benchmark builds networks in namespaces and needs root, ip, nft and tc (${missing})`,
  );
  process.exit(0);
}

const lab = new NetnsLab(process.env.COTERIE_NETNS_PREFIX);
const scratch = join(tmpdir(), `coterie-reach-${lab.id}`);
try {
  const direct = lab.addHome('fullcone', MBIT);
  const behind = lab.addHome('restricted', MBIT);
  const tracker = await lab.startTracker(join(scratch, 'tracker'));
  const members = [
    { name: 'seedd', ns: direct.home, address: direct.lan },
    { name: 'seedr', ns: behind.home, address: behind.lan },
    { name: 'dl', ns: lab.pubPeer, address: PUBLIC_PEER },
  ];
  for (const m of members) await lab.startMember(m.ns, { ...m, dataDir: join(scratch, m.name), tracker });
  const run = (i: number, ...args: string[]) =>
    lab.coterie(members[i]!.ns, ['--data-dir', join(scratch, members[i]!.name), ...args]);
  run(2, 'create_group', 'bench');
  for (const i of [0, 1]) {
    run(i, 'join_group', 'bench');
    run(2, 'accept_request', 'bench', members[i]!.name);
  }
  const rates: Record<string, number> = {};
  for (const [i, path] of [
    [0, 'direct'],
    [1, 'relayed'],
  ] as const) {
    const file = join(scratch, `${path}.bin`);
    await randomFile(file, FILE_BYTES);
    run(i, 'upload_file', file, 'bench');
    run(2, 'download_file', 'bench', `${path}.bin`, join(scratch, `got-${path}.bin`), '--wait');
    const row = (
      JSON.parse(run(2, '--json', 'show_downloads')) as {
        downloads: Array<{ fileName: string; startedAt: number; endedAt: number }>;
      }
    ).downloads.find((d) => d.fileName === `${path}.bin`)!;
    rates[path] = FILE_BYTES / ((row.endedAt - row.startedAt) / 1000);
    emit(`reach.relay.${path}_rate`, (rates[path]! * 8) / 1e6, 'Mbit/s');
  }
  emit('reach.relay.relayed_share_of_direct', (100 * rates.relayed!) / rates.direct!, '%');
  emit('reach.relay.relayed_share_of_link', (100 * rates.relayed! * 8) / (MBIT * 1e6), '%');

  const status = JSON.parse(run(1, '--json', 'status')) as { peerId: string; reach: { relay: string } };
  const probe = spawnSync(
    'ip',
    [
      ...['netns', 'exec', lab.pubPeer, process.execPath, '--import', 'tsx'],
      fileURLToPath(new URL('./_circuit-probe.ts', import.meta.url)),
      ...[tracker, status.reach.relay, status.peerId, String(CIRCUITS)],
    ],
    { encoding: 'utf8', timeout: 120_000 },
  );
  if (probe.status !== 0) throw new Error(`circuit probe: ${probe.stderr}`);
  const { times, errors } = JSON.parse(probe.stdout) as { times: number[]; errors: string[] };
  times.sort((a, b) => a - b);
  emit('reach.relay.connect_ok', times.length, `of ${CIRCUITS}`);
  if (errors.length > 0) log(`circuits that failed: ${errors.length}, first: ${errors[0]}`);
  if (times.length > 0) {
    emit('reach.relay.connect_ms.p50', times[Math.floor(times.length * 0.5)]!, 'ms');
    emit('reach.relay.connect_ms.p99', times[Math.ceil(times.length * 0.99) - 1]!, 'ms');
  }

  // Direct TCP across each NAT pair: a listener in one home, a connect from another home to its router.
  const homes = new Map<string, Home>([
    ['fullcone', direct],
    ['restricted', behind],
  ]);
  for (const t of ['fullcone', 'restricted', 'symmetric'] as NatType[]) {
    homes.set(`${t}-2`, lab.addHome(t, 0));
    if (!homes.has(t)) homes.set(t, lab.addHome(t, 0));
  }
  const matrix: Record<string, Record<string, boolean>> = {};
  for (const t of ['fullcone', 'restricted', 'symmetric']) {
    const server = homes.get(t)!;
    const listener = spawn('ip', [
      ...['netns', 'exec', server.home, process.execPath, '-e'],
      "require('net').createServer((s) => s.end()).listen(4999)",
    ]);
    await new Promise((r) => setTimeout(r, 500));
    matrix[t] = {};
    for (const from of ['fullcone', 'restricted', 'symmetric']) {
      const client = homes.get(from === t ? `${t}-2` : from)!;
      const r = spawnSync(
        'ip',
        [
          ...['netns', 'exec', client.home, process.execPath, '-e'],
          `require('net').connect(4999, '${server.wan}').on('connect', () => process.exit(0)).on('error', () => process.exit(1)); setTimeout(() => process.exit(2), 2000)`,
        ],
        { timeout: 10_000 },
      );
      matrix[t]![from] = r.status === 0;
    }
    listener.kill('SIGKILL');
  }
  process.stdout.write(`${JSON.stringify({ name: 'reach.direct_success', matrix, load1: load() })}\n`);
} finally {
  lab.cleanUp();
  rmSync(scratch, { recursive: true, force: true });
}
