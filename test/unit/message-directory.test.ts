import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CoterieError } from '../../src/protocol/errors.js';
import type { GroupsService } from '../../src/tracker/services/groups.js';
import { createDirectory } from '../../src/tracker/services/messages/directory.js';
import { openStore, type Store } from '../../src/tracker/store/index.js';
import { tempDir } from '../helpers/temp-dir.js';

let store: Store | undefined;
afterEach(async () => {
  await store?.close();
  store = undefined;
});

describe('message directory', () => {
  it("checks an acknowledgement against the group's cached member list, not a read per acknowledgement", async () => {
    store = await openStore({ location: join(tempDir('coterie-directory-').path, 'tracker.db') });
    for (const u of ['ann', 'bob', 'eve'])
      await store.db.insertInto('users').values({ user_id: u, password_hash: 'x', created_at: 1 }).execute();
    await store.db.insertInto('groups').values({ group_id: 'g', owner_id: 'ann', created_at: 1 }).execute();
    for (const u of ['ann', 'bob'])
      await store.db.insertInto('memberships').values({ group_id: 'g', user_id: u, joined_at: 1 }).execute();
    const standings: string[] = [];
    const groups = {
      async requireMember(userId: string, groupId: string) {
        standings.push(userId);
        if (userId === 'eve') throw new CoterieError('NOT_A_MEMBER', `not a member of ${groupId}`);
        return { owner: 'ann' };
      },
    } as Pick<GroupsService, 'requireMember'> as GroupsService;
    const directory = createDirectory(store.db, groups);
    const stream = { kind: 'group', groupId: 'g' } as const;

    await directory.requireReader('bob', stream);
    expect(standings).toEqual(['bob']); // no list cached yet: the standing is read
    expect(await directory.readersOf('g:g', stream)).toEqual(['ann', 'bob']);
    for (let i = 0; i < 100; i++) await directory.requireReader('bob', stream);
    await directory.requireReader('ann', { kind: 'topic', groupId: 'g', topic: 't' });
    expect(standings).toEqual(['bob']);
    // Not on the list: the standing is read, and refuses.
    await expect(directory.requireReader('eve', stream)).rejects.toMatchObject({ code: 'NOT_A_MEMBER' });
    // A membership change drops the list: the standing is read again.
    directory.forgetMembers('g');
    await directory.requireReader('bob', stream);
    expect(standings).toEqual(['bob', 'eve', 'bob']);
  });
});
