// ui: the web UI's figures. ui.bundle_gzip: the page's bytes, gzipped (target ≤ 150 KiB);
// ui.event_to_dom.p50 / .p95: a daemon event until the page's DOM shows it, over 1,000 events,
// in Debian's Chromium (target p95 ≤ 200 ms; skipped, and said so, without /usr/bin/chromium).
// Prints JSON lines as bench/run.ts says. Needs `npm run build` (dist/web).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { readDaemonFile } from '../src/peer/client.js';
import { startPeerDaemon } from '../src/peer/index.js';
import type { TicketAnswer } from '../src/protocol/ui.js';
import { makeTempDir } from './lib/temp-dir.js';

const CHROMIUM = '/usr/bin/chromium';
const EVENTS = 1000;
const WEB = join(import.meta.dirname, '..', 'dist', 'web');

function line(o: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(o)}\n`);
}

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

async function eventToDom(): Promise<number[]> {
  const dir = makeTempDir('coterie-bench-ui-');
  const daemon = await startPeerDaemon({ dataDir: dir.path, trackers: ['http://127.0.0.1:1'] });
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
    ],
  });
  try {
    const info = readDaemonFile(dir.path)!;
    const ticket = await fetch(`http://${info.ui!.host}:${info.ui!.port}/auth/ticket`, {
      method: 'POST',
      headers: { authorization: `Bearer ${info.token}` },
    });
    const page = await browser.newPage();
    await page.goto(((await ticket.json()) as TicketAnswer).url);
    await page.locator('[data-live="true"]').waitFor();
    // Each line the overview's feed gains, with the wall-clock time it appeared.
    // (A string: it runs in the page, whose DOM types this file does not load.)
    await page.evaluate(`
      globalThis.seen = [];
      new MutationObserver((records) => {
        const at = performance.timeOrigin + performance.now();
        for (const r of records) for (const n of r.addedNodes) globalThis.seen.push([n.textContent ?? '', at]);
      }).observe(document.querySelector('.feed'), { childList: true });
    `);
    const sentAt = new Map<string, number>();
    for (let i = 0; i < EVENTS; i++) {
      const url = `bench-${i}`;
      sentAt.set(url, performance.timeOrigin + performance.now());
      daemon.emit('event', { type: 'trackerConnected', url });
      await new Promise((r) => setTimeout(r, 2));
    }
    await page.waitForFunction(
      (n) => (globalThis as unknown as { seen: unknown[] }).seen.length >= n,
      EVENTS,
      { timeout: 60_000 },
    );
    const seen = (await page.evaluate(
      () => (globalThis as unknown as { seen: [string, number][] }).seen,
    )) as [string, number][];
    const latencies: number[] = [];
    for (const [text, at] of seen) {
      const url = /bench-\d+/.exec(text)?.[0];
      const t = url === undefined ? undefined : sentAt.get(url);
      if (t !== undefined) latencies.push(at - t);
    }
    return latencies;
  } finally {
    await browser.close();
    await daemon.stop();
    dir.remove();
  }
}

async function main(): Promise<void> {
  const files = readdirSync(WEB);
  const gz = files.reduce((sum, f) => sum + gzipSync(readFileSync(join(WEB, f)), { level: 9 }).length, 0);
  line({ name: 'ui.bundle_gzip', value: Math.round((gz / 1024) * 10) / 10, unit: 'KiB', ref: 150 });
  if (!existsSync(CHROMIUM)) {
    process.stderr.write(`note: ${CHROMIUM} absent: no event-to-DOM figures (apt-get install -y chromium)\n`);
    return;
  }
  const latencies = await eventToDom();
  line({ name: 'ui.event_to_dom.events', value: latencies.length, unit: 'events' });
  line({ name: 'ui.event_to_dom.p50', value: Math.round(quantile(latencies, 0.5) * 10) / 10, unit: 'ms' });
  line({
    name: 'ui.event_to_dom.p95',
    value: Math.round(quantile(latencies, 0.95) * 10) / 10,
    unit: 'ms',
    ref: 200,
  });
}

await main();
