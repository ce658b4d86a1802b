// One direct message sent until a tracker acknowledges it, as a peer does
// through a failover: a 503 (which must carry a retry hint) or a lost
// connection is tried again with the same client id, so that a retried send
// is stored once.
import type { MessageSent } from '../../src/protocol/api.js';
import { client } from './http.js';

export interface Acknowledgement {
  streamId: string;
  seq: number;
  /** When the acknowledgement arrived (ms since the epoch). */
  at: number;
}

export async function sendUntilAcknowledged(
  url: string,
  token: string,
  to: string,
  clientId: string,
  { retryMs = 100, giveUpMs = 60_000 } = {},
): Promise<Acknowledgement> {
  const deadline = Date.now() + giveUpMs;
  for (;;) {
    const r = await client(url)
      .call<MessageSent>('POST', '/v1/messages', { token, body: { to, clientId, body: clientId } })
      .catch(() => undefined);
    if (r?.status === 200 || r?.status === 201)
      return { streamId: r.body.streamId, seq: r.body.seq, at: Date.now() };
    if (r !== undefined && r.status !== 503) throw new Error(`send ${clientId}: ${r.status} ${r.text}`);
    if (r !== undefined && r.headers['retry-after'] === undefined) {
      throw new Error(`send ${clientId}: 503 without retry-after`);
    }
    if (Date.now() > deadline) throw new Error(`send ${clientId}: not acknowledged within ${giveUpMs} ms`);
    await new Promise((res) => setTimeout(res, retryMs));
  }
}
