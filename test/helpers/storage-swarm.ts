// The set-up the storage tests with real peer daemons share (issue 16): users named after
// their peers, signed in, and a group whose owner let the others in, some of them offering
// storage. Calls go straight to each daemon's control API.
import { callDaemon } from '../../src/peer/control/client.js';

/** A control API call to the daemon of `n`, answered as T. */
export type DaemonCall<N extends string> = <T>(n: N, command: string, ...args: string[]) => Promise<T>;

export function daemonCall<N extends string>(dir: (n: N) => string): DaemonCall<N> {
  return <T>(n: N, command: string, ...args: string[]) => callDaemon(dir(n), command, args) as Promise<T>;
}

/** Creates the user of each peer (named after it, password `password-of-<n>`) and logs in. */
export async function signUp<N extends string>(run: DaemonCall<N>, names: readonly N[]): Promise<void> {
  for (const n of names) {
    await run(n, 'create_user', n, `password-of-${n}`);
    await run(n, 'login', n, `password-of-${n}`);
  }
}

/** `owner` creates `groupId` and accepts each member; `storage` members then offer `quota` each. */
export async function storageGroup<N extends string>(
  run: DaemonCall<N>,
  owner: N,
  groupId: string,
  members: readonly N[],
  storage: { peers: readonly N[]; quota: string } = { peers: [], quota: '0' },
): Promise<void> {
  await run(owner, 'create_group', groupId);
  for (const n of members) {
    await run(n, 'join_group', groupId);
    await run(owner, 'accept_request', groupId, n);
  }
  for (const n of storage.peers) await run(n, 'offer_storage', groupId, storage.quota);
}
