// `BENCH_PARTS=udp npm run bench -- reach` (issue 19): what the UDP stream transport costs against
// TCP, in the same run on loopback. Each round a seeder process sends BENCH_UDP_MIB (256) MiB over
// TLS 1.3 to a downloader process, once over TCP and once over a UDX stream
// (src/wire/udp-endpoint.ts, as a punched path carries pieces), the order alternating round by
// round so a drift in load touches both. Figures: MiB/s (median of RUNS rounds) with TCP's as the
// reference, and CPU-seconds per GiB of both processes together (median), which a shared machine
// disturbs less than the rate. No root needed.
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { cpuSeconds } from '../lib/cpu.js';

type Transport = 'tcp' | 'udp';
const MiB = 1024 * 1024;
const BYTES = Number(process.env.BENCH_UDP_MIB ?? 256) * MiB;
const ROUNDS = Number(process.env.RUNS ?? 3);
const PEER = fileURLToPath(new URL('./_stream-peer.ts', import.meta.url));
const load = () => Math.round(loadavg()[0]! * 10) / 10;
const round2 = (x: number) => Math.round(x * 100) / 100;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

/** The first line a child prints, as JSON (bounded: a child that says nothing fails the run). */
function firstLine<T>(child: ReturnType<typeof spawn>, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no answer within 120 s`)), 120_000);
    createInterface({ input: child.stdout! }).once('line', (line) => {
      clearTimeout(timer);
      resolve(JSON.parse(line) as T);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited with ${code}`));
    });
  });
}

/** One transfer: the rate, and the CPU both processes spent on it. */
async function transfer(t: Transport): Promise<{ mibS: number; cpuSPerGiB: number; dlCpuSPerGiB: number }> {
  const node = [process.execPath, '--import', 'tsx', PEER] as const;
  const seeder = spawn(node[0], [...node.slice(1), 'serve', t, String(BYTES)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  try {
    const { port, peerId } = await firstLine<{ port: number; peerId: string }>(seeder, `${t} seeder`);
    const seederBefore = cpuSeconds(seeder.pid!);
    const dl = spawn(node[0], [...node.slice(1), 'get', t, String(port), peerId, String(BYTES)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const { ms, cpuS } = await firstLine<{ ms: number; cpuS: number }>(dl, `${t} downloader`);
    const seederCpu = cpuSeconds(seeder.pid!) - seederBefore;
    const gib = BYTES / (1024 * MiB);
    return {
      mibS: BYTES / MiB / (ms / 1000),
      cpuSPerGiB: (cpuS + seederCpu) / gib,
      dlCpuSPerGiB: cpuS / gib,
    };
  } finally {
    seeder.kill('SIGKILL');
  }
}

const runs: Record<Transport, Array<Awaited<ReturnType<typeof transfer>>>> = { tcp: [], udp: [] };
const loads: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  for (const t of (r % 2 === 0 ? ['tcp', 'udp'] : ['udp', 'tcp']) as Transport[]) {
    loads.push(load());
    runs[t].push(await transfer(t));
    process.stderr.write(`[reach udp] round ${r + 1} ${t}: ${JSON.stringify(runs[t].at(-1))}\n`);
  }
}
const of = (t: Transport, k: 'mibS' | 'cpuSPerGiB' | 'dlCpuSPerGiB') => median(runs[t].map((x) => x[k]));
const [udp, tcp] = [of('udp', 'mibS'), of('tcp', 'mibS')];
const load1 = `${Math.min(...loads)}-${Math.max(...loads)}`;
process.stdout.write(
  `${JSON.stringify({
    name: 'reach.udp.throughput',
    value: round2(udp),
    unit: 'MiB/s',
    ref: round2(tcp),
    ratio: round2(udp / tcp),
    udpCpuSecondsPerGiB: round2(of('udp', 'cpuSPerGiB')),
    tcpCpuSecondsPerGiB: round2(of('tcp', 'cpuSPerGiB')),
    load1,
  })}\n`,
);
process.stdout.write(
  `${JSON.stringify({
    name: 'reach.udp.cpu_s_per_GiB',
    value: round2(of('udp', 'cpuSPerGiB')),
    unit: 'CPU-s/GiB',
    ref: round2(of('tcp', 'cpuSPerGiB')),
    ratio: round2(of('udp', 'cpuSPerGiB') / of('tcp', 'cpuSPerGiB')),
    udpDownloaderCpuSecondsPerGiB: round2(of('udp', 'dlCpuSPerGiB')),
    tcpDownloaderCpuSecondsPerGiB: round2(of('tcp', 'dlCpuSPerGiB')),
    load1,
  })}\n`,
);
