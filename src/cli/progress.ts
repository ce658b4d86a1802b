import cliProgress from 'cli-progress';
import type { Progress } from '../peer/client.js';
import { countOf, formatBytes, formatRate } from './format.js';
import { shown } from './sanitize.js';

export interface ProgressRenderer {
  update(p: Progress): void;
  stop(): void;
}

/**
 * A live progress bar on a terminal (hashing: bytes and rate; downloads:
 * rate, ETA and peers). Off a terminal it renders nothing: scripts read the
 * final answer.
 */
export function createProgressRenderer(stream: NodeJS.WriteStream = process.stderr): ProgressRenderer {
  if (!stream.isTTY) return { update: () => {}, stop: () => {} };
  let bar: cliProgress.SingleBar | undefined;
  let kind: Progress['kind'] | undefined;
  const started = Date.now();
  let lastPeers = 0;
  const payload = (p: Progress) => {
    const elapsed = Math.max(0.001, (Date.now() - started) / 1000);
    // Connections close as the download completes: the last bar keeps the peers that served it.
    if ((p.peers ?? 0) > 0 || p.doneBytes < p.totalBytes) lastPeers = p.peers ?? 0;
    return {
      // The label names a file another member shared.
      label: shown(p.label),
      done: formatBytes(p.doneBytes),
      total_h: formatBytes(p.totalBytes),
      rate: formatRate(p.rateBytesPerSec ?? p.doneBytes / elapsed),
      peers: countOf(lastPeers, 'peer'),
    };
  };
  return {
    update(p) {
      if (bar === undefined || kind !== p.kind) {
        bar?.stop();
        kind = p.kind;
        const tail =
          p.kind === 'download'
            ? '{done}/{total_h} | {rate} | ETA {eta_formatted} | {peers}'
            : '{done}/{total_h} | {rate}';
        bar = new cliProgress.SingleBar(
          {
            stream,
            format: `{label} [{bar}] {percentage}% | ${tail}`,
            hideCursor: true,
            clearOnComplete: false,
            etaBuffer: 50,
            fps: 10,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(Math.max(1, p.totalBytes), 0, payload(p));
      }
      bar.update(p.doneBytes, payload(p));
    },
    stop() {
      bar?.stop();
      bar = undefined;
    },
  };
}
