import type { Bitfield } from '../../../core/bitfield.js';
import type { CoterieError } from '../../../protocol/errors.js';
import type {
  Clock,
  ClockTimer,
  Dial,
  PieceClient,
  PieceClientOptions,
  RejectKind,
} from '../../../wire/index.js';
import { createTlsDial } from '../../../wire/index.js';
import type { DownloadEvent, PeerConnectionState, SeederInfo } from './events.js';
import { DOWNLOAD_DEFAULTS, type DownloadOptions, type RetryPolicy, type UpgradePolicy } from './options.js';
import type { TicketRenewal } from './ticket-renewal.js';

// A download's seeder links: what one link holds, what the engine does with what links see,
// and the options links run with (seeder-links.ts dials, retries and upgrades them).

/** One seeder of a download: its connection (a piece client) and how its attempts went. */
export class SeederLink {
  state: PeerConnectionState = 'connecting';
  client: PieceClient | null = null;
  /** A dial is under way (client is set only once it succeeds). */
  dialing = false;
  ready = false;
  failures = 0;
  lastError: CoterieError | null = null;
  /** Permanent: banned, refused our ticket, or out of retries. */
  givenUp = false;
  timer: ClockTimer | null = null;
  /** The ticket sent in the hello, and what renews it once the seeder accepted (see ticket-renewal.ts). */
  ticket = '';
  renewal: TicketRenewal | null = null;
  /** The client goes through a relay: a direct path is tried meanwhile (upgrade-attempt count, its timer, a dial under way). */
  relayed = false;
  upgrades = 0;
  upgradeTimer: ClockTimer | null = null;
  upgrading = false;
  /** Something changed while an attempt dialled (the seeder moved, our endpoint did): the next one at once after it. */
  upgradeAgain = false;
  /** The relayed client a direct one replaced: its requests in flight still land, then it is closed. */
  draining: PieceClient | null = null;
  constructor(public info: SeederInfo) {}
}

/** What the engine does with what the links see; every call comes from a link's current client. */
export interface SeederLinksHandlers {
  finished(): boolean;
  /** The part file is open: links may connect. */
  started(): boolean;
  isBanned(peerId: string): boolean;
  /** The download ends with this error (a ticket the tracker refuses for good). */
  fail(err: CoterieError): void;
  emit(e: DownloadEvent): void;
  /** `upgraded`: a direct client replaced the link's relayed one (the scheduler keeps the peer and its requests). */
  ready(link: SeederLink, upgraded: boolean): void;
  /** Blocks asked of the seeder and not yet answered. */
  inFlight(link: SeederLink): number;
  pieces(link: SeederLink, pieces: Bitfield | number): void;
  block(link: SeederLink, piece: number, offset: number, data: Buffer): void;
  rejected(link: SeederLink, piece: number, kind: RejectKind): void;
  /** The link's connection is gone: the scheduler forgets the peer. */
  closed(link: SeederLink): void;
  /** A link was given up for good: the download may have no seeder left. */
  givenUp(): void;
  pump(): void;
}

export interface SeederLinksOptions {
  dial: Dial;
  clock: Clock;
  retry: RetryPolicy;
  upgrade: UpgradePolicy;
  connectTimeoutMs: number;
  /** Aborted when the download ends: dials under way stop. */
  signal: AbortSignal;
  ticket?: string | undefined;
  getTicket?: (() => Promise<string>) | undefined;
  /** What every piece client of this download says and where its blocks go. */
  client: Omit<PieceClientOptions, 'seederPeerId' | 'ticket' | 'handshakeTimeoutMs' | 'clock'>;
}

/** A download's options as its links use them, the defaults filled in. */
export function seederLinkOptions(
  o: DownloadOptions,
  d: {
    clock: Clock;
    signal: AbortSignal;
    peerId: string;
    pieceCount: number;
    io: PieceClientOptions['io'];
  },
): SeederLinksOptions {
  const connectTimeoutMs = o.connectTimeoutMs ?? DOWNLOAD_DEFAULTS.connectTimeoutMs;
  return {
    dial:
      o.dial ?? createTlsDial(o.identity, { plaintext: o.plaintext ?? false, timeoutMs: connectTimeoutMs }),
    clock: d.clock,
    retry: {
      maxAttempts: o.retry?.maxAttempts ?? DOWNLOAD_DEFAULTS.retry.maxAttempts,
      backoff: { ...DOWNLOAD_DEFAULTS.retry.backoff, ...o.retry?.backoff },
    },
    upgrade: { ...DOWNLOAD_DEFAULTS.upgrade, ...o.upgrade },
    connectTimeoutMs,
    signal: d.signal,
    ticket: o.ticket,
    getTicket: o.getTicket,
    client: {
      fileId: o.fileId,
      peerId: d.peerId,
      pieceCount: d.pieceCount,
      io: d.io,
      inOrder: o.scheduler?.sequential === true,
      ...(o.pathKeepalive === undefined ? {} : { pathKeepalive: o.pathKeepalive }),
    },
  };
}
