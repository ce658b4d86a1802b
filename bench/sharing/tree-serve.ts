// tree-serve.100k (issue 17): the heap a peer serving a folder of 100,000 files holds for it
// (BENCH_TREE_SERVE_FILES to change it; 1–64 bytes each, 100 per folder). The share is recorded
// in a real peer.db (its manifest in pages), then served as the daemon serves it, two ways in
// turn in this one process:
//   pages  from its pages in peer.db, a few decoded at a time (tree-source.ts, since issue 17)
//   whole  from the whole manifest read back from peer.db (what the daemon did before)
// Prints JSON lines, heap used (MiB, after a full GC) above what it was before the source:
//   tree-serve.100k.<way>.served_mib       once the source is built (the share is served)
//   tree-serve.100k.<way>.after_reads_mib  after reading 3,000 random pieces from it
//   tree-serve.100k.<way>.reads_cpu_s      CPU-seconds of those reads (random pieces are the
//                                          pages' worst case: most need a page decoded again)
//   tree-serve.100k.pages_per_whole        pages.after_reads ÷ whole.after_reads
// with the load average beside them.
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { createTreeManifest } from '../../src/core/tree-manifest.js';
import { wholeTreePages } from '../../src/peer/files/tree-pages.js';
import { TreePieceSource } from '../../src/peer/files/tree-source.js';
import { PeerStore, type ShareRecord } from '../../src/peer/store/index.js';
import { makeTempDir } from '../lib/temp-dir.js';

const FILES = Number(process.env.BENCH_TREE_SERVE_FILES ?? 100_000);
const NAME = FILES === 100_000 ? 'tree-serve.100k' : `tree-serve.${FILES}`;
const READS = 3_000;

setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const heapMiB = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed / 1024 ** 2;
};

const log = (s: string) => process.stderr.write(`${s}\n`);
const emit = (name: string, value: number, unit: string, extra: Record<string, unknown> = {}) =>
  process.stdout.write(
    `${JSON.stringify({ name: `${NAME}.${name}`, value: Number(value.toFixed(3)), unit, load: loadavg()[0], ...extra })}\n`,
  );

const tmp = makeTempDir('coterie-bench-tree-serve-');
const root = join(tmp.path, 'shared');

function writeTree(): void {
  for (let i = 0; i < FILES; i++) {
    const folder = join(root, `a${Math.floor(i / 10_000)}`, `b${Math.floor(i / 100) % 100}`);
    if (i % 100 === 0) mkdirSync(folder, { recursive: true });
    writeFileSync(join(folder, `f${String(i).padStart(6, '0')}.dat`), `${i} `.repeat(1 + (i % 13)));
  }
}

const settle = () => new Promise((r) => setTimeout(r, 1_000));

/** Serves the share one way: the heap it holds once built, and after READS random pieces. */
async function measure(way: string, make: () => TreePieceSource): Promise<number> {
  // What hashing left behind is collected first: only the source's own heap is measured.
  await settle();
  heapMiB();
  await settle();
  const before = heapMiB();
  const source = make();
  const served = heapMiB() - before;
  const cpu0 = process.cpuUsage();
  let seed = 7;
  for (let i = 0; i < READS; i++) {
    seed = (seed * 1_103_515_245 + 12_345) >>> 0;
    await source.read(seed % source.pieceCount, 0, 1);
  }
  const cpu = process.cpuUsage(cpu0);
  const afterReads = heapMiB() - before;
  emit(`${way}.served_mib`, served, 'MiB', { baselineMiB: Number(before.toFixed(1)) });
  emit(`${way}.after_reads_mib`, afterReads, 'MiB', { reads: READS, pageReads: source.index.pageReads });
  emit(`${way}.reads_cpu_s`, (cpu.user + cpu.system) / 1e6, 'cpu-s', { reads: READS });
  await source.close();
  return afterReads;
}

let store: PeerStore | undefined;
try {
  log(`writing ${FILES} files…`);
  writeTree();
  log('hashing…');
  let { manifest, fileId } = await createTreeManifest(root);
  mkdirSync(join(tmp.path, 'peer'));
  store = new PeerStore(join(tmp.path, 'peer'));
  const share: ShareRecord = {
    groupId: 'g',
    fileName: 'shared',
    fileId,
    version: 1,
    path: root,
    size: manifest.size,
    createdAt: Date.now(),
  };
  store.shares.put(share, manifest);
  manifest = undefined as never; // held from here on only as the way served holds it
  const s = store;
  const pages = await measure('pages', () => new TreePieceSource(root, s.shares.manifest(share)!));
  const whole = await measure(
    'whole',
    () => new TreePieceSource(root, wholeTreePages(s.shares.manifest(share)!.whole())),
  );
  emit('pages_per_whole', pages / whole, 'ratio');
} finally {
  store?.close();
  tmp.remove();
}
