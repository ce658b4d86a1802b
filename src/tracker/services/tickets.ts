import { randomUUID } from 'node:crypto';
import { type CryptoKey, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import type { ClusterKeys, TicketResponse } from '../../protocol/api.js';
import { MAX_TICKET_TTL_SECONDS, signTicket, TICKET_ALG } from '../../protocol/tickets.js';
import { toNumber } from '../store/schema.js';
import type { ServiceDeps } from './context.js';
import type { FilesService } from './files.js';

export interface TicketsService {
  /** Loads the cluster key from the store, creating it on the very first start. */
  init(): Promise<void>;
  issue(
    userId: string,
    groupId: string,
    file: string,
    peerId: string,
    ttlMinutes?: number,
  ): Promise<TicketResponse>;
  keys(): ClusterKeys;
}

export function createTicketsService(options: { ticketTtlSeconds: number }) {
  return (deps: ServiceDeps & { files: FilesService }): TicketsService => {
    const { store, now, files } = deps;
    let signing: { kid: string; privateKey: CryptoKey } | undefined;
    let published: ClusterKeys = { keys: [] };

    /** The second before which this user's tickets for the group are void (0: never revoked). */
    async function revokedBefore(userId: string, groupId: string): Promise<number> {
      const row = await store.db
        .selectFrom('ticket_revocations')
        .select('before_s')
        .where('group_id', '=', groupId)
        .where('user_id', '=', userId)
        .executeTakeFirst();
      return row === undefined ? 0 : toNumber(row.before_s);
    }

    async function load() {
      const rows = await store.db
        .selectFrom('cluster_keys')
        .selectAll()
        .orderBy('created_at')
        .orderBy('kid')
        .execute();
      return rows;
    }

    return {
      async init() {
        let rows = await load();
        if (rows.length === 0) {
          const { privateKey, publicKey } = await generateKeyPair(TICKET_ALG, {
            crv: 'Ed25519',
            extractable: true,
          });
          const kid = randomUUID();
          await store.db
            .insertInto('cluster_keys')
            .values({
              kid,
              private_jwk: JSON.stringify(await exportJWK(privateKey)),
              public_jwk: JSON.stringify(await exportJWK(publicKey)),
              created_at: now(),
            })
            .onConflict((oc) => oc.column('kid').doNothing())
            .execute();
          // Two trackers of a cluster starting at once may both insert: all keys are published, the oldest signs.
          rows = await load();
        }
        const oldest = rows[0]!;
        signing = {
          kid: oldest.kid,
          privateKey: (await importJWK(JSON.parse(oldest.private_jwk) as JWK, TICKET_ALG)) as CryptoKey,
        };
        published = {
          keys: rows.map((r) => ({
            ...(JSON.parse(r.public_jwk) as { kty: string; crv?: string; x?: string }),
            kid: r.kid,
            alg: TICKET_ALG,
            use: 'sig',
          })),
        };
      },

      async issue(userId, groupId, file, peerId, ttlMinutes) {
        if (signing === undefined) throw new Error('tickets service used before init()');
        const { fileId } = await files.resolve(userId, groupId, file);
        // Capped whatever the caller or the configuration says: a ticket binds only this long.
        const ttlSeconds = Math.min(
          ttlMinutes === undefined ? options.ticketTtlSeconds : ttlMinutes * 60,
          MAX_TICKET_TTL_SECONDS,
        );
        // A member accepted again within the second of their removal: stamped at the revocation's
        // second, or seeders would refuse the fresh ticket as issued before it.
        const issuedAt = Math.max(Math.floor(now() / 1000), await revokedBefore(userId, groupId));
        const ticket = await signTicket(
          { user: userId, peer: peerId, file: fileId, group: groupId, ttlSeconds, nowSeconds: issuedAt },
          signing,
        );
        return { ticket, groupId, fileId, peerId, expiresAt: (issuedAt + ttlSeconds) * 1000 };
      },

      keys() {
        return published;
      },
    };
  };
}
