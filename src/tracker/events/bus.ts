/**
 * Events that cross from the services to the connected sessions. The
 * in-process bus delivers them to this tracker's sessions; a PostgreSQL
 * LISTEN/NOTIFY bus (cluster issue) implements the same interface so that a
 * session on tracker B hears what happened on tracker A. Events are small
 * JSON-safe objects (NOTIFY payloads are capped at 8000 bytes).
 */
export type TrackerEvent =
  | { kind: 'join_requested'; groupId: string; userId: string; owner: string; at: number }
  | { kind: 'join_decided'; groupId: string; userId: string; accepted: boolean; at: number }
  | {
      kind: 'seeder_appeared';
      fileId: string;
      peerId: string;
      userId: string;
      addresses: string[];
      at: number;
    }
  | { kind: 'seeder_left'; fileId: string; peerId: string; at: number }
  /** A session elsewhere took over this peer id: the tracker holding the old session closes it. */
  | { kind: 'peer_replaced'; peerId: string; sessionId: string; at: number }
  /** Who belongs to a group changed (accept, leave, owner change, deletion): drop cached standings. */
  | { kind: 'membership_changed'; groupId: string; at: number }
  /**
   * `userId` subscribed to a topic or unsubscribed: drop cached subscriber
   * lists; a new subscriber's sessions catch up (a message pushed before this
   * was heard went to the old list).
   */
  | { kind: 'subscription_changed'; streamId: string; userId: string; subscribed: boolean; at: number }
  /** A group's file listing or its shares changed: drop cached lookups of that file. */
  | { kind: 'files_changed'; groupId: string; fileId: string; at: number }
  /** Peer scores changed: drop cached seeder lists that show them. */
  | { kind: 'scores_changed'; peerIds: string[]; at: number }
  /**
   * `userId` was removed from the group or left it: their tickets for it
   * issued before `before` (seconds) are void. Each tracker tells the
   * sessions of the group's members (services/revocations.ts).
   */
  | { kind: 'tickets_revoked'; groupId: string; userId: string; before: number; at: number }
  /**
   * A name was deleted from a group, or versions of it dropped by retention:
   * each tracker tells the sessions of the group's members (services/file-versions.ts).
   */
  | { kind: 'file_deleted'; groupId: string; name: string; fileIds: string[]; at: number }
  /** Storage offers, reports or a replication policy changed (issue 16): the planning tracker plans soon. */
  | { kind: 'storage_changed'; groupId: string; at: number }
  /**
   * The planner's orders for storage peer `peerId`, in the order to carry
   * them out: the tracker holding its session pushes them (`replicate` /
   * `drop`). `t`: r(eplicate) or d(rop); `g` group, `f` file, `s` size, `r` drop reason.
   */
  | { kind: 'storage_orders'; peerId: string; orders: StorageOrderItem[]; at: number }
  /** Peer `from` punches a UDP path to peer `peerId` from `endpoint` (issue 19): its tracker pushes `punch`. */
  | { kind: 'punch'; peerId: string; from: string; endpoint: string; n: string; at: number }
  /**
   * Peer `peerId`'s session sent new addresses (issue 19): the trackers push `peer_moved` to the
   * sessions watching a file it seeds. `addresses` passed the session protocol's checks.
   */
  | { kind: 'peer_moved'; peerId: string; addresses: string[]; at: number }
  /** A token was revoked (logout): sessions opened with it close, on every tracker. */
  | { kind: 'token_revoked'; tokenHash: string; at: number }
  /** A tracker joined or left the cluster: the others read the membership rows again now. */
  | { kind: 'cluster_changed'; trackerId: string; at: number }
  /**
   * Messages were committed through tracker `origin`: per stream, the seq range
   * [from, to]. The others read the rows for their own sessions; the origin
   * pushed them itself and ignores its own event.
   */
  | {
      kind: 'messages_stored';
      origin: string;
      streams: { s: string; from: number; to: number }[];
      at: number;
    }
  /**
   * Other trackers' events may have been missed: this tracker's bus tells its
   * own subscribers when its listening connection was lost and is back, and a
   * tracker whose backlog of unsent events overflowed sends it to the others
   * (pg-bus.ts). They read what they cached or pushed from the store again.
   */
  | { kind: 'events_lost'; at: number }
  /** Cursors moved through tracker `origin`: the receipts to push to the senders' sessions elsewhere. */
  | {
      kind: 'receipts';
      origin: string;
      receipts: Receipt[];
    };

/** One order in a `storage_orders` event (short keys: NOTIFY payloads are capped at 8000 bytes). */
export type StorageOrderItem =
  | { t: 'r'; g: string; f: string; s: number }
  | { t: 'd'; g: string; f: string; r: 'surplus' | 'withdrawn' | 'corrupt' | 'unlisted' | 'unoffered' };

/** A reader's cursors moved: what the senders of the messages it passed are told. */
export interface Receipt {
  streamId: string;
  reader: string;
  delivered: number;
  read: number;
  /** Senders of messages the cursor moved past (the reader excluded). */
  senders: string[];
  at: number;
}

export type TrackerEventHandler = (event: TrackerEvent) => void;

export interface EventBus {
  /** Delivers to every subscriber of every tracker on the bus (this one included). */
  publish(event: TrackerEvent): Promise<void>;
  /** Returns the unsubscribe function. */
  subscribe(handler: TrackerEventHandler): () => void;
  close(): Promise<void>;
}

/** The single-tracker bus: synchronous fan-out in process, one subscriber's throw never stops the others. */
export function createLocalEventBus(onHandlerError: (err: unknown) => void = () => {}): EventBus {
  const handlers = new Set<TrackerEventHandler>();
  return {
    async publish(event) {
      for (const h of handlers) {
        try {
          h(event);
        } catch (err) {
          onHandlerError(err);
        }
      }
    },
    subscribe(handler) {
      handlers.add(handler);
      return () => handlers.delete(handler);
    },
    async close() {
      handlers.clear();
    },
  };
}
