import type { ClientMessage, SessionFeature, WelcomeMessage } from '../../protocol/session.js';

/**
 * The optional session features the daemon switches on when a tracker offers them
 * (protocol/session-features.ts). It reads both forms of each, from any moment: frames the
 * tracker wrote before it handled the `enable` come in the old form.
 * - `sentBatches`: `sent_batch` settles each send's request as its own `sent` would;
 * - `receiptBatches`: `receipts` is told as one `receipt` event per item.
 */
export const DAEMON_FEATURES: readonly SessionFeature[] = Object.freeze(['sentBatches', 'receiptBatches']);

/**
 * What to enable after this welcome: the wanted features it lists, in our order. Nothing when it
 * has no list: a tracker before the list does not know `enable` (nor a hello that asks), and the
 * daemon must reach it all the same.
 */
export function featuresToEnable(
  welcome: Pick<WelcomeMessage, 'features'>,
  wanted: readonly SessionFeature[] = DAEMON_FEATURES,
): SessionFeature[] {
  const offered = welcome.features;
  if (offered === undefined) return [];
  return wanted.filter((f) => offered.includes(f));
}

/**
 * Sends the `enable` this welcome calls for, through `request` (the session's requests, answered
 * by `ack`); resolves with the features now on: none if there was nothing to ask, or the tracker
 * refused, or the connection went (the old forms still come then, and are read).
 */
export async function enableOffered(
  welcome: Pick<WelcomeMessage, 'features'>,
  request: (message: Omit<ClientMessage, 'id'>) => Promise<unknown>,
): Promise<readonly SessionFeature[]> {
  const features = featuresToEnable(welcome);
  if (features.length === 0) return [];
  try {
    await request({ type: 'enable', features } as Omit<ClientMessage, 'id'>);
    return features;
  } catch {
    return [];
  }
}
