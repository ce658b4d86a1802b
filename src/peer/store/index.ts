// The entry of peer.db: the store the daemon opens, its repositories and the records they keep.
export { type DownloadRecord, DownloadRepository, type DownloadState } from './downloads.js';
export { type InboxMessage, InboxRepository } from './inbox.js';
export type { InboxFilter } from './inbox-query.js';
export type { StoredManifest } from './manifest-pages.js';
export { type OutboxRecord, OutboxRepository } from './outbox.js';
export { type ReplicaRecord, ReplicaRepository, type StorageOfferRecord } from './replicas.js';
export { ScheduleRepository } from './schedule.js';
export { type ShareRecord, ShareRepository } from './shares.js';
export { PeerStore, type SavedSession } from './store.js';
