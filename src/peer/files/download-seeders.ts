import type { Logger } from 'pino';
import { NEUTRAL_SCORE } from '../../core/index.js';
import { parseHostPort } from '../../protocol/addresses.js';
import { type FileDetail, MAX_REPORTS_PER_CALL } from '../../protocol/api.js';
import { CoterieError } from '../../protocol/errors.js';
import { parseUdpAddress } from '../../protocol/punch.js';
import { parseRelayAddress } from '../../protocol/relay.js';
import type { PeerMovedEvent, SessionEvent } from '../../protocol/session.js';
import type { TrackerHttpClient } from '../tracker/http-client.js';
import type { SeederInfo, SeederWhere } from './download/index.js';

/**
 * The seeders of a download as the peer's downloads see them: read from the
 * tracker's listing and its pushes, named by their users in errors, and
 * reported back to the tracker (bytes, stalls, corrupt pieces) for scoring.
 */

/** A score low enough that a seeder the tracker flagged for corruption is tried last. */
const FLAGGED_SCORE = 0.05;

/** The listed seeders to dial, other than this peer; records who runs each in `users`. */
export function listedSeeders(
  detail: Pick<FileDetail, 'seeders'>,
  selfPeerId: string,
  users: Map<string, string>,
): SeederInfo[] {
  const out: SeederInfo[] = [];
  for (const s of detail.seeders) {
    if (s.peerId === selfPeerId) continue;
    const reach = reachOf(s.addresses);
    if (reach === undefined) continue;
    users.set(s.peerId, s.userId);
    out.push({ peerId: s.peerId, ...reach, score: s.flagged ? Math.min(s.score, FLAGGED_SCORE) : s.score });
  }
  return out;
}

/** A seeder the session announced while a download runs: not scored yet, so neutral. */
export function appearedSeeder(
  e: Extract<SessionEvent, { type: 'seeder_appeared' }>,
): SeederInfo | undefined {
  const reach = reachOf(e.addresses);
  return reach === undefined ? undefined : { peerId: e.peerId, ...reach, score: NEUTRAL_SCORE };
}

/** Where a seeder the tracker says moved (`peer_moved`) is now; undefined: no address to dial. */
export function movedSeeder(e: PeerMovedEvent): SeederWhere | undefined {
  return reachOf(e.addresses);
}

/**
 * Where a seeder is: its first host:port, and the relays it holds a
 * reservation on (`relay://host:port`: the tracker could not dial it back),
 * and its public UDP endpoint (`udp://host:port`) to punch a hole to.
 */
function reachOf(addresses: string[]): SeederWhere | undefined {
  const address = addresses.map(parseHostPort).find((a) => a !== undefined);
  const relays = addresses.map(parseRelayAddress).filter((a) => a !== undefined);
  const udp = addresses.map(parseUdpAddress).find((a) => a !== undefined);
  if (address === undefined) return undefined;
  return { address, ...(relays.length === 0 ? {} : { relays }), ...(udp === undefined ? {} : { udp }) };
}

/**
 * The engine names seeders by the start of their peer id; the user who runs
 * each is what the person reading the error knows: "5f1c2a3b4c5d ('alice')".
 */
export function withSeederNames(e: CoterieError, users: ReadonlyMap<string, string>): CoterieError {
  let message = e.message;
  for (const [peerId, userId] of users) {
    const short = peerId.slice(0, 12);
    message = message.replaceAll(short, `${short} ('${userId}')`);
  }
  if (message === e.message) return e;
  return new CoterieError(e.code, message, {
    cause: e,
    ...(e.details === undefined ? {} : { details: e.details }),
  });
}

/** Tells the tracker how each peer served a download (completed or failed); best effort. */
export function reportPeers(
  http: TrackerHttpClient,
  log: Logger,
  fileId: string,
  durationMs: number,
  peers: Array<{ peerId: string; pieces: number; bytes: number; stalls: number; corruptPieces: number }>,
): void {
  const reports = peers
    .filter((p) => p.peerId !== '' && (p.pieces > 0 || p.corruptPieces > 0 || p.stalls > 0))
    .slice(0, MAX_REPORTS_PER_CALL)
    .map((p) => ({
      peerId: p.peerId,
      fileId,
      bytes: p.bytes,
      seconds: Math.max(0, durationMs / 1000),
      failedPieces: p.stalls,
      corruptPieces: p.corruptPieces,
    }));
  if (reports.length === 0) return;
  http.call('report', { body: { reports } }).catch((err: unknown) => {
    log.debug({ err: (err as Error).message }, 'peer report not sent');
  });
}

/**
 * Whether the tracker lists a whole seeder other than this peer that it could dial (a download
 * need not wait); partial seeders (other downloaders) may never hold every piece.
 */
export function hasLiveSeeder(detail: Pick<FileDetail, 'seeders'>, selfPeerId: string): boolean {
  const whole = detail.seeders.filter((s) => s.partial !== true);
  return listedSeeders({ seeders: whole }, selfPeerId, new Map()).length > 0;
}
