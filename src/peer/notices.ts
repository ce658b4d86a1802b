import type { SessionEvent } from '../protocol/session.js';

export type { PeerEvent } from '../protocol/peer-events.js';

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
