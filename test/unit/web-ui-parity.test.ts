/**
 * Parity: every command of the control API has a control in the web UI. The table
 * web/src/controls.ts (command → page) must name exactly the command table's commands, and the
 * page's source must hold that command's control (a CommandForm or CommandButton with
 * cmd="NAME"); the browser test (web-ui.browser.test.ts) then finds each one on its page.
 * A command added to ControlCommands without a control fails here (and `tsc -p web`).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../src/peer/client.js';
import { COMMAND_PAGES, type PageName } from '../../web/src/controls.js';

const WEB = join(import.meta.dirname, '..', '..', 'web', 'src');

/** Which source file draws each page. */
const PAGE_SOURCES: Record<PageName, string> = {
  overview: 'pages-account.ts',
  groups: 'pages-groups.ts',
  files: 'pages-files.ts',
  transfers: 'pages-transfers.ts',
  messages: 'pages-messages.ts',
  topics: 'pages-messages.ts',
};

describe('web UI parity with the control API', () => {
  it('maps every command of the command table to a page, and nothing else', () => {
    expect(Object.keys(COMMAND_PAGES).sort()).toEqual(COMMANDS.map((c) => c.name).sort());
  });

  it('draws a control for each command on its page', () => {
    const missing = Object.entries(COMMAND_PAGES).filter(([name, page]) => {
      const source = readFileSync(join(WEB, PAGE_SOURCES[page]), 'utf8');
      return !source.includes(`cmd="${name}"`);
    });
    expect(missing.map(([name, page]) => `${name} (on ${page})`)).toEqual([]);
  });
});
