// Peer daemons (in this process) for the cluster tests that send messages:
// accounts made through the API, each peer logged in with its list of
// trackers turned so that the peers start spread over them, all in one chat
// group with a topic that some of them subscribe to.
import { join } from 'node:path';
import { type PeerDaemon, startPeerDaemon } from '../../src/peer/daemon.js';
import { client } from '../helpers/tracker.js';

export interface ChatPeers {
  peers: PeerDaemon[];
  /** User ids, p0 … p(N-1), in the order of `peers`. */
  names: string[];
  /** The topic's subscribers. */
  subscribers: string[];
}

export async function startChatPeers(
  root: string,
  trackerUrls: string[],
  count: number,
  subscribes: (i: number) => boolean,
  group = { id: 'chat', topic: 'news' },
): Promise<ChatPeers> {
  const names = Array.from({ length: count }, (_, i) => `p${i}`);
  const password = (n: string) => `pw-${n}-secret`;
  const api = client(trackerUrls[0]!);
  await Promise.all(
    names.map((n) => api.call('POST', '/v1/users', { body: { userId: n, password: password(n) } })),
  );
  const turned = (i: number) => [
    ...trackerUrls.slice(i % trackerUrls.length),
    ...trackerUrls.slice(0, i % trackerUrls.length),
  ];
  const peers = await Promise.all(
    names.map(async (n, i) => {
      const p = await startPeerDaemon({
        dataDir: join(root, 'peers', n),
        trackers: turned(i),
        pool: { backoffMs: [0, 50, 100, 200, 400], jitter: 0.2 },
      });
      await p.execute('login', [n, password(n)]);
      return p;
    }),
  );
  const [owner, ...members] = peers as [PeerDaemon, ...PeerDaemon[]];
  await owner.execute('create_group', [group.id]);
  await Promise.all(members.map((p) => p.execute('join_group', [group.id])));
  for (const n of names.slice(1)) await owner.execute('accept_request', [group.id, n]);
  await owner.execute('create_topic', [group.id, group.topic]);
  await Promise.all(
    peers.filter((_, i) => subscribes(i)).map((p) => p.execute('subscribe', [group.id, group.topic])),
  );
  return { peers, names, subscribers: names.filter((_, i) => subscribes(i)) };
}
