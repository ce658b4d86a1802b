import type { SessionEvent } from '../protocol/session.js';

/** A line the daemon wants its user to see (pushed events, tracker changes, finished downloads). */
export interface Notice {
  kind: 'tracker' | 'group' | 'seeder' | 'download' | 'share' | 'message' | 'receipt';
  text: string;
  at: number;
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
  }
}
