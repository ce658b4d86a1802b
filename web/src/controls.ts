import type { CommandName } from '../../src/protocol/control.js';

/**
 * The parity table: every command of the control API and the page that
 * offers it. Typed by CommandName, so a command added to ControlCommands
 * without a row here fails `tsc -p web`; test/unit/web-ui-parity.test.ts checks
 * the rows against the command table and that each page's source has the
 * control, and the browser test finds each control on its page
 * (`[data-command=NAME]`).
 */
export type PageName = 'overview' | 'groups' | 'files' | 'transfers' | 'messages' | 'topics';

export const COMMAND_PAGES: Record<CommandName, PageName> = {
  status: 'overview',
  create_user: 'overview',
  login: 'overview',
  logout: 'overview',
  quit: 'overview',
  list_groups: 'groups',
  create_group: 'groups',
  join_group: 'groups',
  leave_group: 'groups',
  list_requests: 'groups',
  accept_request: 'groups',
  decline_request: 'groups',
  remove_member: 'groups',
  list_members: 'groups',
  list_files: 'files',
  upload_file: 'files',
  download_file: 'files',
  select_files: 'files',
  stop_share: 'files',
  update_file: 'files',
  delete_file: 'files',
  lock_file: 'files',
  unlock_file: 'files',
  list_versions: 'files',
  set_versions: 'files',
  offer_storage: 'files',
  withdraw_storage: 'files',
  set_replication: 'files',
  list_storage: 'files',
  show_downloads: 'transfers',
  show_limits: 'transfers',
  set_limits: 'transfers',
  set_schedule: 'transfers',
  pause_download: 'transfers',
  resume_download: 'transfers',
  cancel_download: 'transfers',
  send_msg: 'messages',
  send_group_msg: 'messages',
  show_messages: 'messages',
  show_sent: 'messages',
  message_status: 'messages',
  mark_read: 'messages',
  create_topic: 'topics',
  list_topics: 'topics',
  publish: 'topics',
  subscribe: 'topics',
  unsubscribe: 'topics',
  fetch_messages: 'topics',
};

export const PAGES: { name: PageName; title: string }[] = [
  { name: 'overview', title: 'Overview' },
  { name: 'groups', title: 'Groups' },
  { name: 'files', title: 'Files' },
  { name: 'transfers', title: 'Transfers' },
  { name: 'messages', title: 'Messages' },
  { name: 'topics', title: 'Topics' },
];
