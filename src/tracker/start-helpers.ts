import { randomUUID } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PRIVATE_FILE_MODE } from '../os/private-files.js';
import type { StoreHealth } from '../protocol/api.js';
import type { Store } from './store/index.js';

/** The store as /healthz and the start log line say it. */
export function storeHealth(store: Store): StoreHealth {
  const status = store.primary?.status();
  if (status === undefined) return { dialect: store.dialect, acknowledgedOn: 'one-machine' };
  return {
    dialect: store.dialect,
    ...(status.primary === undefined ? {} : { primary: status.primary }),
    ...(status.replication ?? {}),
  };
}

/** This tracker's id among a cluster's, kept in `<dataDir>/tracker.id` (made at the first start). */
export function trackerIdFor(dataDir: string): string {
  const file = join(dataDir, 'tracker.id');
  try {
    const id = readFileSync(file, 'utf8').trim();
    if (/^[A-Za-z0-9_-]{8,64}$/.test(id)) return id;
  } catch {
    // first start: create it below
  }
  const id = randomUUID();
  writeFileSync(file, `${id}\n`, { mode: PRIVATE_FILE_MODE });
  return id;
}
