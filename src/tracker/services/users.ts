import { createHash, randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { LoginResponse, UserCreated, WhoAmI } from '../../protocol/api.js';
import { CoterieError } from '../../protocol/errors.js';
import { assertNewName } from '../../protocol/names.js';
import { type Database, toNumber } from '../store/index.js';
import type { ServiceDeps } from './context.js';
import { hashPassword, type ScryptCost, verifyPassword } from './passwords.js';
import { createFailureLimiter } from './rate-limit.js';

export interface UsersOptions {
  scrypt: ScryptCost;
  sessionTtlSeconds: number;
  loginFailuresPerUser: number;
  loginFailuresPerAddress: number;
  loginFailureWindowMs: number;
  tokenCacheMs: number;
  tokenCacheEntries: number;
}

/** Who is calling: the result of authenticating a bearer token. */
export interface Caller {
  userId: string;
  tokenHash: string;
  expiresAt: number;
}

export interface UsersService {
  create(userId: string, password: string): Promise<UserCreated>;
  login(userId: string, password: string, address: string, ttlSeconds?: number): Promise<LoginResponse>;
  logout(caller: Caller): Promise<void>;
  /** Throws UNAUTHENTICATED for a missing, unknown, revoked or expired token. */
  authenticate(token: string | undefined): Promise<Caller>;
  /** The caller of a token authenticated lately and still valid, without a promise; else undefined. */
  cachedCaller(token: string | undefined): Caller | undefined;
  whoami(caller: Caller): WhoAmI;
  exists(userId: string): Promise<boolean>;
}

const TOKEN_BYTES = 32;
const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

// A dummy hash to verify against for unknown users, so timing does not reveal which user ids exist.
let dummyHash: Promise<string> | undefined;

export function createUsersService(options: UsersOptions) {
  return (deps: ServiceDeps): UsersService => {
    const { store, now } = deps;
    const perUser = createFailureLimiter({
      db: store.db,
      scope: 'user',
      maxFailures: options.loginFailuresPerUser,
      windowMs: options.loginFailureWindowMs,
      now,
    });
    const perAddress = createFailureLimiter({
      db: store.db,
      scope: 'address',
      maxFailures: options.loginFailuresPerAddress,
      windowMs: options.loginFailureWindowMs,
      now,
    });
    // token → caller, checked again against expiry on every hit. Keyed by the token itself, not its
    // hash: a hit then costs no SHA-256 (the store keeps only hashes; this memory sees tokens anyway).
    const cache = new Map<string, { caller: Caller; cachedAt: number }>();
    function cachedCaller(token: string | undefined): Caller | undefined {
      if (token === undefined) return undefined;
      const hit = cache.get(token);
      if (hit === undefined) return undefined;
      const t = now();
      return t - hit.cachedAt < options.tokenCacheMs && hit.caller.expiresAt > t ? hit.caller : undefined;
    }

    const rateLimited = (ms: number, what: string) =>
      new CoterieError(
        'RATE_LIMITED',
        `too many failed logins ${what}: wait ${Math.ceil(ms / 1000)} s before trying again`,
        { details: { retryAfterSeconds: Math.ceil(ms / 1000) } },
      );

    return {
      async create(userId, password) {
        assertNewName('user id', userId);
        const createdAt = now();
        const passwordHash = await hashPassword(password, options.scrypt);
        const result = await store.db
          .insertInto('users')
          .values({ user_id: userId, password_hash: passwordHash, created_at: createdAt })
          .onConflict((oc) => oc.column('user_id').doNothing())
          .executeTakeFirst();
        if (Number(result.numInsertedOrUpdatedRows ?? 0) === 0) {
          throw new CoterieError(
            'USER_EXISTS',
            `user '${userId}' already exists: pick another user id or log in`,
          );
        }
        return { userId, createdAt };
      },

      async login(userId, password, address, ttlSeconds) {
        const [userWait, addrWait] = await Promise.all([
          perUser.blockedForMs(userId),
          perAddress.blockedForMs(address),
        ]);
        if (userWait > 0) throw rateLimited(userWait, `for user '${userId}'`);
        if (addrWait > 0) throw rateLimited(addrWait, 'from your address');
        const row = await store.db
          .selectFrom('users')
          .select(['password_hash'])
          .where('user_id', '=', userId)
          .executeTakeFirst();
        dummyHash ??= hashPassword('not a password', options.scrypt);
        const ok = await verifyPassword(password, row?.password_hash ?? (await dummyHash));
        if (!row || !ok) {
          await Promise.all([perUser.recordFailure(userId), perAddress.recordFailure(address)]);
          throw new CoterieError(
            'BAD_CREDENTIALS',
            'wrong user id or password: check both, or create the user first',
          );
        }
        await perUser.reset(userId);
        const token = randomBytes(TOKEN_BYTES).toString('base64url');
        const createdAt = now();
        const ttl = Math.min(ttlSeconds ?? options.sessionTtlSeconds, options.sessionTtlSeconds);
        const expiresAt = createdAt + ttl * 1000;
        await store.db
          .insertInto('sessions')
          .values({
            token_hash: hashToken(token),
            user_id: userId,
            created_at: createdAt,
            expires_at: expiresAt,
          })
          .execute();
        // Opportunistic cleanup keeps the table from growing with expired sessions.
        await store.db.deleteFrom('sessions').where('expires_at', '<', createdAt).execute();
        return { token, userId, expiresAt };
      },

      async logout(caller) {
        // Rare next to authentications: a scan instead of a second index by hash.
        for (const [token, e] of cache) if (e.caller.tokenHash === caller.tokenHash) cache.delete(token);
        await store.db.deleteFrom('sessions').where('token_hash', '=', caller.tokenHash).execute();
        await deps.bus.publish({ kind: 'token_revoked', tokenHash: caller.tokenHash, at: now() });
      },

      async authenticate(token) {
        if (token === undefined || token.length === 0 || token.length > 256) {
          throw new CoterieError(
            'UNAUTHENTICATED',
            'missing session token: log in and send Authorization: Bearer <token>',
          );
        }
        const hit = cachedCaller(token);
        if (hit !== undefined) return hit;
        const tokenHash = hashToken(token);
        const t = now();
        const row = await store.db
          .selectFrom('sessions')
          .select(['user_id', 'expires_at'])
          .where('token_hash', '=', tokenHash)
          .executeTakeFirst();
        if (row === undefined || toNumber(row.expires_at) <= t) {
          cache.delete(token);
          throw new CoterieError(
            'UNAUTHENTICATED',
            'session token unknown, revoked or expired: log in again',
          );
        }
        const caller = { userId: row.user_id, tokenHash, expiresAt: toNumber(row.expires_at) };
        if (cache.size >= options.tokenCacheEntries) cache.clear();
        cache.set(token, { caller, cachedAt: t });
        return caller;
      },

      cachedCaller,

      whoami(caller) {
        return { userId: caller.userId, expiresAt: caller.expiresAt };
      },

      exists: (userId) => userExists(store.db, userId),
    };
  };
}

/** Whether the account exists; `db` may be a transaction (a Transaction is a Kysely). */
export async function userExists(db: Kysely<Database>, userId: string): Promise<boolean> {
  const row = await db.selectFrom('users').select('user_id').where('user_id', '=', userId).executeTakeFirst();
  return row !== undefined;
}
