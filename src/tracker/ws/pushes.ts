import { TypeCompiler } from '@sinclair/typebox/compiler';
import { PeerMovedEvent, SESSION_CLOSE } from '../../protocol/session.js';
import type { EventBus, TrackerEvent } from '../events/index.js';
import type { EncodedMessage, MessagesService } from '../services/messages.js';
import type { PresenceService } from '../services/presence.js';
import type { Outbox, ReceiptItem } from './outbox.js';
import type { SessionRegistry } from './registry.js';
import type { RevocationPush } from './revocation-push.js';
import type { Session } from './session.js';
import type { SessionCatchUp } from './session-catch-up.js';
import type { SessionOrder } from './session-order.js';

export interface PushesDeps {
  messages: Pick<MessagesService, 'onStored' | 'onReceipts' | 'setConnectedUsers'>;
  bus: EventBus;
  registry: SessionRegistry;
  outbox: Outbox;
  catchUp: SessionCatchUp;
  order: SessionOrder;
  revocationPush: RevocationPush<Session>;
  /** Where a moved peer's files are read (`peer_moved`). */
  presence: Pick<PresenceService, 'seededBy'>;
  onError: (err: unknown) => void;
}

/**
 * Fans out what happened to the sessions it concerns: stored messages and
 * receipts from the messages service, and the bus's events (join requests and
 * decisions, seeders of watched files, replaced peers, revocations, logouts).
 * Returns the function that stops listening.
 */
export function startPushes(deps: PushesDeps): () => void {
  const { messages, registry, outbox, catchUp, order, revocationPush } = deps;

  messages.setConnectedUsers((users) => users.filter((u) => registry.hasUser(u)));
  const unsubscribeStored = messages.onStored((batch) => {
    const out = new Map<Session, EncodedMessage[]>();
    for (const m of batch.messages) {
      for (const user of batch.readers.get(m.message.streamId) ?? []) {
        const own = user === m.message.sender;
        for (const s of registry.greetedOf(user)) {
          // Catching up: held until the catch-up sent everything older (its own: the catch-up skips them).
          if (s.held !== undefined) {
            if (!own) s.held.push(m);
            continue;
          }
          if (own) {
            order.own(s, m);
            continue;
          }
          const list = out.get(s);
          if (list === undefined) out.set(s, [m]);
          else list.push(m);
        }
      }
    }
    for (const [s, items] of out) order.push(s, items);
  });

  // One commit of acknowledgements: per sender's session, its receipts in order, in one frame
  // where it asked for them merged (a message to a group of 1,000 makes hundreds at once).
  const unsubscribeReceipts = messages.onReceipts((receipts) => {
    const out = new Map<Session, ReceiptItem[]>();
    for (const r of receipts) {
      const item = { streamId: r.streamId, reader: r.reader, delivered: r.delivered, read: r.read, at: r.at };
      for (const sender of r.senders) {
        for (const s of registry.greetedOf(sender)) {
          const list = out.get(s);
          if (list === undefined) out.set(s, [item]);
          else list.push(item);
        }
      }
    }
    for (const [s, items] of out) outbox.sendReceipts(s, items);
  });

  const unsubscribeBus = deps.bus.subscribe((event: TrackerEvent) => {
    switch (event.kind) {
      case 'events_lost':
        catchUp.all();
        break;
      case 'join_requested':
        outbox.sendAll(registry.greetedOf(event.owner), {
          type: 'join_requested',
          groupId: event.groupId,
          userId: event.userId,
          at: event.at,
        });
        break;
      case 'subscription_changed':
        if (event.subscribed) catchUp.user(event.userId);
        break;
      case 'join_decided':
        if (event.accepted) catchUp.user(event.userId);
        outbox.sendAll(registry.greetedOf(event.userId), {
          type: event.accepted ? 'join_accepted' : 'join_declined',
          groupId: event.groupId,
          userId: event.userId,
          at: event.at,
        });
        break;
      case 'seeder_appeared':
        outbox.sendAll(registry.watchersOf(event.fileId), {
          type: 'seeder_appeared',
          fileId: event.fileId,
          peerId: event.peerId,
          userId: event.userId,
          addresses: event.addresses,
          at: event.at,
        });
        break;
      case 'seeder_left':
        outbox.sendAll(registry.watchersOf(event.fileId), {
          type: 'seeder_left',
          fileId: event.fileId,
          peerId: event.peerId,
          at: event.at,
        });
        break;
      case 'peer_replaced':
        registry
          .get(event.sessionId)
          ?.socket.close(SESSION_CLOSE.REPLACED, 'replaced by a newer session of this peer');
        break;
      case 'tickets_revoked':
        revocationPush.onEvent(event);
        break;
      case 'file_deleted':
        revocationPush.onFileDeleted(event);
        break;
      case 'storage_orders':
        pushStorageOrders(registry, outbox, event);
        break;
      case 'punch':
        for (const s of registry.all()) {
          if (s.info?.peerId !== event.peerId) continue;
          const { from, endpoint, n, at } = event;
          outbox.send(s, { type: 'punch', from, endpoint, n, at });
        }
        break;
      case 'peer_moved':
        pushPeerMoved(deps, event);
        break;
      case 'token_revoked':
        for (const s of registry.all()) {
          if (s.caller.tokenHash === event.tokenHash)
            s.socket.close(SESSION_CLOSE.UNAUTHENTICATED, 'logged out');
        }
        break;
    }
  });

  return () => {
    unsubscribeBus();
    unsubscribeStored();
    unsubscribeReceipts();
  };
}

const movedCheck = TypeCompiler.Compile(PeerMovedEvent);

/**
 * A peer's new addresses, once to each session on this tracker that watches a file it seeds (a
 * download of it running or waiting), whatever number of its files that session watches: the
 * sessions that may hold a link to it, read from this tracker's own watch lists, and no more
 * than seeder_appeared already tells them. Cheaper than every member of its groups (a membership
 * query per group, and pushes to members who download nothing from it) and as correct: a session
 * that is not watching has no download that could use the news.
 */
function pushPeerMoved(
  deps: Pick<PushesDeps, 'registry' | 'outbox' | 'presence' | 'onError'>,
  e: Extract<TrackerEvent, { kind: 'peer_moved' }>,
): void {
  const push = { type: 'peer_moved' as const, peerId: e.peerId, addresses: e.addresses, at: e.at };
  // Anyone with the database's rights can NOTIFY: only what a session could have sent is pushed.
  if (!movedCheck.Check(push)) return;
  if (!deps.registry.hasWatchers()) return;
  deps.presence.seededBy(e.peerId).then((files) => {
    const to = new Set<Session>();
    for (const f of files)
      for (const s of deps.registry.watchersOf(f)) if (s.info?.peerId !== e.peerId) to.add(s);
    deps.outbox.sendAll(to, push);
  }, deps.onError);
}

/** The planner's orders for a storage peer, to its sessions on this tracker (if any), in order. */
function pushStorageOrders(
  registry: SessionRegistry,
  outbox: Outbox,
  e: Extract<TrackerEvent, { kind: 'storage_orders' }>,
): void {
  // Anyone with the database's rights can NOTIFY: a malformed event is dropped, not pushed.
  if (typeof e.peerId !== 'string' || !Array.isArray(e.orders)) return;
  for (const s of registry.all()) {
    if (s.info?.peerId !== e.peerId) continue;
    for (const o of e.orders) {
      if (o.t === 'r') outbox.send(s, { type: 'replicate', groupId: o.g, fileId: o.f, size: o.s, at: e.at });
      else if (o.t === 'd')
        outbox.send(s, { type: 'drop', groupId: o.g, fileId: o.f, reason: o.r, at: e.at });
    }
  }
}
