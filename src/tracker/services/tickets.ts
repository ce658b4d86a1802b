import { randomUUID } from 'node:crypto';
import { type CryptoKey, exportJWK, generateKeyPair, importJWK, type JWK } from 'jose';
import type { Logger } from 'pino';
import type { ClusterKeys, TicketResponse } from '../../protocol/api.js';
import { MAX_TICKET_TTL_SECONDS, signTicket, TICKET_ALG } from '../../protocol/tickets.js';
import { toNumber } from '../store/index.js';
import type { ServiceDeps } from './context.js';
import type { FilesService } from './files.js';
import {
  createKeyFile,
  isWrapped,
  missingKeyFile,
  readKeyFile,
  unwrapPrivateJwk,
  type WrappingKey,
  wrapPrivateJwk,
} from './key-wrap.js';

export interface TicketsService {
  /**
   * Loads the cluster's keys from the store, unwrapping them with the key
   * file (made on the very first start, with the first signing key);
   * KEY_MISMATCH when the key file does not open them.
   */
  init(): Promise<void>;
  issue(
    userId: string,
    groupId: string,
    file: string,
    peerId: string,
    options?: { ttlMinutes?: number | undefined; version?: number | undefined },
  ): Promise<TicketResponse>;
  keys(): ClusterKeys;
}

export interface TicketsOptions {
  ticketTtlSeconds: number;
  /** The file of the key that wraps the signing keys in the store (`<dataDir>/tracker.key` by default). */
  keyFile: string;
  logger: Logger;
}

export function createTicketsService(options: TicketsOptions) {
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

    async function insertNewKey(wrapping: WrappingKey) {
      const { privateKey, publicKey } = await generateKeyPair(TICKET_ALG, {
        crv: 'Ed25519',
        extractable: true,
      });
      const kid = randomUUID();
      await store.db
        .insertInto('cluster_keys')
        .values({
          kid,
          private_jwk: await wrapPrivateJwk(await exportJWK(privateKey), kid, wrapping),
          public_jwk: JSON.stringify(await exportJWK(publicKey)),
          created_at: now(),
        })
        .onConflict((oc) => oc.column('kid').doNothing())
        .execute();
    }

    /**
     * A row's private key: unwrapped, or (a store from before key files) a plain JWK, which is
     * wrapped in place now. The update is conditional so that trackers upgrading at once agree.
     */
    async function privateJwkOf(row: { kid: string; private_jwk: string }, wrapping: WrappingKey) {
      if (isWrapped(row.private_jwk)) return unwrapPrivateJwk(row.private_jwk, row.kid, wrapping);
      const jwk = JSON.parse(row.private_jwk) as JWK;
      const wrapped = await wrapPrivateJwk(jwk, row.kid, wrapping);
      const { numUpdatedRows } = await store.db
        .updateTable('cluster_keys')
        .set({ private_jwk: wrapped })
        .where('kid', '=', row.kid)
        .where('private_jwk', '=', row.private_jwk)
        .executeTakeFirst();
      if (numUpdatedRows > 0n) {
        options.logger.warn(
          { kid: row.kid, keyFile: wrapping.path },
          'wrapped a signing key that the store held in plain text (copies of the store made before now still hold it)',
        );
        return jwk;
      }
      // Another tracker wrapped it first: with the same key file, or we refuse.
      const [again] = await store.db
        .selectFrom('cluster_keys')
        .select('private_jwk')
        .where('kid', '=', row.kid)
        .execute();
      return unwrapPrivateJwk(again?.private_jwk ?? '', row.kid, wrapping);
    }

    return {
      async init() {
        let rows = await load();
        let wrapping = readKeyFile(options.keyFile);
        if (wrapping === undefined) {
          if (rows.some((r) => isWrapped(r.private_jwk))) throw missingKeyFile(options.keyFile);
          wrapping = createKeyFile(options.keyFile);
          options.logger.info({ keyFile: options.keyFile }, 'made the key file that wraps the signing keys');
        }
        if (rows.length === 0) {
          await insertNewKey(wrapping);
          // Two trackers of a cluster starting at once may both insert: all keys are published, the oldest signs.
          rows = await load();
        }
        const privates = await Promise.all(rows.map((r) => privateJwkOf(r, wrapping)));
        const oldest = rows[0]!;
        signing = {
          kid: oldest.kid,
          privateKey: (await importJWK(privates[0]!, TICKET_ALG)) as CryptoKey,
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

      async issue(userId, groupId, file, peerId, { ttlMinutes, version } = {}) {
        if (signing === undefined) throw new Error('tickets service used before init()');
        // Deleted names and versions dropped by retention are no longer listed: no ticket for them.
        const { fileId } = await files.resolve(userId, groupId, file, version);
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
