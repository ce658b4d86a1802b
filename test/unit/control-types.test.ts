/**
 * The control API's types (protocol/control.ts): the command table and the map
 * of commands agree, and the client, runCommand and the daemon answer the
 * result of the command they are given. The type assertions are checked by
 * `npm run lint` (tsc over test/); the table check runs here.
 */
import { describe, expect, expectTypeOf, it } from 'vitest';
import { COMMANDS, type CommandContext, callDaemon, runCommand } from '../../src/peer/client.js';
import type { PeerDaemon } from '../../src/peer/index.js';
import type { FileList, MessagePage } from '../../src/protocol/api.js';
import type {
  AnswerOf,
  CommandName,
  ControlCommands,
  FileTree,
  SendAnswer,
  StatusView,
} from '../../src/protocol/control.js';

// Every command of the map, once: the compiler refuses a name missing here or not in the map.
const EVERY_COMMAND: Record<CommandName, true> = {
  create_user: true,
  login: true,
  logout: true,
  create_group: true,
  join_group: true,
  leave_group: true,
  list_groups: true,
  list_requests: true,
  accept_request: true,
  decline_request: true,
  remove_member: true,
  list_members: true,
  list_files: true,
  upload_file: true,
  download_file: true,
  select_files: true,
  update_file: true,
  delete_file: true,
  lock_file: true,
  unlock_file: true,
  list_versions: true,
  set_versions: true,
  stop_share: true,
  show_downloads: true,
  send_msg: true,
  send_group_msg: true,
  show_messages: true,
  show_sent: true,
  message_status: true,
  mark_read: true,
  create_topic: true,
  list_topics: true,
  publish: true,
  subscribe: true,
  unsubscribe: true,
  fetch_messages: true,
  status: true,
  quit: true,
  offer_storage: true,
  withdraw_storage: true,
  set_replication: true,
  list_storage: true,
  set_limits: true,
  set_schedule: true,
  show_limits: true,
  pause_download: true,
  resume_download: true,
  cancel_download: true,
};

describe('the control API types', () => {
  it('name the same commands as the command table', () => {
    expect(COMMANDS.map((c) => c.name).sort()).toEqual(Object.keys(EVERY_COMMAND).sort());
  });

  it('type each answer by the command name', () => {
    expectTypeOf(callDaemon<'list_files'>).returns.resolves.toEqualTypeOf<FileList | FileTree>();
    expectTypeOf(callDaemon<'status'>).returns.resolves.toEqualTypeOf<StatusView>();
    expectTypeOf(callDaemon<string>).returns.resolves.toBeUnknown();
    expectTypeOf(runCommand<'fetch_messages'>).returns.resolves.toEqualTypeOf<MessagePage>();
    const publish = (d: PeerDaemon) => d.execute('publish', []);
    expectTypeOf(publish).returns.resolves.toEqualTypeOf<SendAnswer>();
    expectTypeOf<ReturnType<CommandContext['listFiles']>>().resolves.toEqualTypeOf<
      ControlCommands['list_files']['result']
    >();
    expectTypeOf<AnswerOf<'no_such_command'>>().toBeUnknown();
  });
});
