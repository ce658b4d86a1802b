import type { StoredMessage } from '../protocol/api.js';
import type { SessionEvent } from '../protocol/session.js';

/**
 * The daemon's typed event stream (after nats.js status()): what tests, the
 * shell and later a web page can follow without parsing text. Recoverable
 * trouble (a tracker lost, a peer banned) is an event and a log line, never
 * an error.
 */
export type PeerEvent =
  | { type: 'trackerConnected'; url: string }
  | { type: 'trackerLost'; url: string; reason: string }
  | { type: 'trackerFailover'; from: string; to: string }
  | { type: 'sessionEnded'; reason: string }
  | { type: 'downloadCompleted'; id: number; fileName: string; dest: string }
  | { type: 'downloadFailed'; id: number; fileName: string; reason: string }
  | { type: 'peerBanned'; downloadId: number; peerId: string; reason: string }
  /** A shared file changed since it was hashed: it is no longer served nor announced. */
  | { type: 'shareChanged'; fileId: string; fileNames: string[]; path: string; reason: string }
  /** A downloader reported a piece of a share corrupt, and what re-checking the file found. */
  /** The tracker deleted these files of a group (or its retention dropped them): no longer served there. */
  | { type: 'shareDeleted'; groupId: string; fileIds: string[]; fileNames: string[] }
  | { type: 'corruptReported'; fileId: string; piece: number; verdict: 'intact' | 'changed' | 'skipped' }
  | { type: 'trackerEvent'; event: SessionEvent }
  /** A message arrived and was stored (once per message id). */
  | { type: 'messageReceived'; message: StoredMessage }
  /** A reader's peer acknowledged (delivered) or showed (read) messages this user sent. */
  | { type: 'receipt'; streamId: string; reader: string; delivered: number; read: number };

/** A line the daemon wants its user to see (pushed events, tracker changes, finished downloads). */
export interface Notice {
  kind: 'tracker' | 'group' | 'seeder' | 'download' | 'share' | 'message' | 'receipt';
  text: string;
  at: number;
}

/** What the user sees when a shared file changed under its share. */
export function shareChangedText(fileName: string): string {
  return `'${fileName}' changed since you shared it: share it again or update it`;
}

/** What a seeder sees when files it shares were deleted from a group (or fell out of its retention). */
export function shareDeletedText(fileName: string, groupId: string): string {
  return `no longer seeding '${fileName}' in '${groupId}': it was deleted there (or the version you had fell out of the group's retention)`;
}

export function noticeOfEvent(e: SessionEvent, fileName: (fileId: string) => string): Notice | undefined {
  switch (e.type) {
    case 'join_requested':
      return {
        kind: 'group',
        text: `'${e.userId}' asks to join '${e.groupId}': accept_request ${e.groupId} ${e.userId}`,
        at: e.at,
      };
    case 'join_accepted':
      return { kind: 'group', text: `you are now a member of '${e.groupId}'`, at: e.at };
    case 'join_declined':
      return { kind: 'group', text: `your request to join '${e.groupId}' was declined`, at: e.at };
    case 'seeder_appeared':
      return { kind: 'seeder', text: `'${e.userId}' now shares ${fileName(e.fileId)}`, at: e.at };
    case 'seeder_left':
      return undefined; // routine churn: the download view shows the peer count
    case 'tickets_revoked':
      return undefined; // the piece server acted on it; nothing for this user to do
  }
}
