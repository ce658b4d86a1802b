import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import type { PeerIdentity } from '../wire/index.js';
import { createPortMapper, loadPortMappingLibrary, type PortMapper } from './port-mapping.js';
import { type Punch, startPunch } from './punch.js';
import { createReach, type Reach } from './reach.js';
import type { TrackerSession } from './tracker/session.js';

/** The ways others reach this peer, started and stopped together: reach (dial-back, relays), hole punching, port mapping. */
export interface ReachParts {
  readonly reach: Reach;
  /** Maps the piece server's port on the home router (when mapping is on), in the background. */
  startMapping(port: number): void;
  stop(): Promise<void>;
}

export async function startReachParts(o: {
  session: TrackerSession;
  identity: PeerIdentity;
  token: () => string | undefined;
  /** The piece server's host: a loopback one is reached by nobody outside, so nothing is mapped. */
  host: string;
  accept: (stream: Duplex, peerId: string) => void;
  directAddresses: () => string[];
  punch: boolean;
  portMapping: false | { leaseSec?: number; gateway?: string } | undefined;
  /** Our public UDP endpoint was learned or moved (after it is announced): a punch that failed may work now. */
  onPublicChange?: () => void;
  log: Logger;
}): Promise<ReachParts> {
  const mapping = o.portMapping !== false && !isLoopbackHost(o.host);
  // Loaded while the rest starts: it is the largest part of the time to a mapping.
  if (mapping) loadPortMappingLibrary().catch(() => {});
  let mapper: PortMapper | undefined;
  let reach: Reach | undefined;
  const punch: Punch | undefined = o.punch
    ? await startPunch({
        session: o.session,
        identity: o.identity,
        host: o.host,
        accept: o.accept,
        onPublicChange: () => {
          reach?.refresh();
          o.onPublicChange?.();
        },
        log: o.log,
      })
    : undefined;
  reach = createReach({
    ...(punch === undefined ? {} : { punch }),
    session: o.session,
    identity: o.identity,
    token: o.token,
    accept: o.accept,
    directAddresses: o.directAddresses,
    mapping: { address: () => mapper?.address(), view: () => mapper?.view() },
    log: o.log,
  });
  const started = reach;
  return {
    reach: started,
    startMapping(port) {
      if (!mapping) return;
      mapper = createPortMapper({
        port,
        log: o.log,
        ...(o.portMapping === undefined || o.portMapping === false ? {} : o.portMapping),
        onChange: () => started.addressesChanged(),
      });
      // In the background: a mapping that comes later is announced then (and re-checked by the tracker).
      void mapper.start();
    },
    async stop() {
      started.stop();
      await punch?.stop().catch(() => {});
      await mapper?.stop();
    },
  };
}

/** A piece server on loopback only is reached by nobody outside: nothing to map. */
function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}
