import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, RouteShorthandOptions } from 'fastify';
import { CoterieError } from '../../protocol/errors.js';

export interface AccountCreationLimit {
  /** Account creations allowed per client address per window (each costs a 32 MiB scrypt). */
  perAddress: number;
  windowMs: number;
}

/**
 * Registers @fastify/rate-limit for the routes that ask for it (none globally)
 * and returns the route options of account creation: each attempt costs a
 * memory-hard hash (32 MiB, ~50–100 ms), so one address may not make the
 * tracker run them back to back. Counted in this tracker's memory: the cost
 * it bounds is this tracker's CPU and memory. The key is `request.ip`, the
 * client's address as `trustProxy` (--trust-proxy) lets fastify read it.
 */
export async function registerAccountCreationLimit(
  app: FastifyInstance,
  limit: AccountCreationLimit,
): Promise<RouteShorthandOptions> {
  await app.register(rateLimit, { global: false });
  return {
    config: {
      rateLimit: {
        max: limit.perAddress,
        timeWindow: limit.windowMs,
        errorResponseBuilder: (_request, context) => {
          const seconds = Math.max(1, Math.ceil(context.ttl / 1000));
          return new CoterieError(
            'RATE_LIMITED',
            `too many accounts created from your address (${context.max} per ${Math.round(limit.windowMs / 60_000)} min): wait ${seconds} s before trying again`,
            { details: { retryAfterSeconds: seconds } },
          );
        },
      },
    },
  };
}
