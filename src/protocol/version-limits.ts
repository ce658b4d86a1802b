/**
 * The limits of a file name's versions and locks (api.ts's schemas and the peer's command
 * table both use them): here, away from TypeBox, so `coterie <command>` checks its words
 * without loading the API schemas.
 */

/** Lock lifetimes: 5 minutes unless asked, at most a day (a lock forgotten by a live peer must end). */
export const DEFAULT_LOCK_TTL_SECONDS = 300;
export const MAX_LOCK_TTL_SECONDS = 86_400;

/** How many versions of each name a group keeps, unless its owner says (set_versions). */
export const DEFAULT_KEEP_VERSIONS = 5;
export const MAX_KEEP_VERSIONS = 1000;
