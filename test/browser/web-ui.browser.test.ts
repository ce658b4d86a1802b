/**
 * The web UI in Debian's Chromium against real tracker and peer processes: two people log in
 * through their `coterie ui` links, create an account each, a group, ask and accept, share a
 * file, and download it from two seeders (the second, carol, driven by the CLI) while the page
 * shows both in its peer table and the piece map filling (byte-identical on disk). A direct
 * message goes Sent → Delivered → Read on the sender's page as receipts arrive, and the messages
 * page groups conversations per correspondent and group. Every command's control is found on its
 * page, the page does not poll, it is usable at 360 px wide and by keyboard alone, and
 * screenshots of each page land in test-results/web-ui/.
 * Skipped, and said so, when /usr/bin/chromium is absent (.ci/run installs it).
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMAND_PAGES } from '../../web/src/controls.js';
import { coterie, randomFile, startProcess, stop } from '../helpers/cli-harness.js';
import { tempDir, trackerPerFile } from '../helpers/tracker.js';
import { loginLink } from '../helpers/web-ui.js';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = join(import.meta.dirname, '..', '..', 'test-results', 'web-ui');
const AXE = join(import.meta.dirname, '..', '..', 'node_modules', 'axe-core', 'axe.min.js');
const hasChromium = existsSync(CHROMIUM);
if (!hasChromium) {
  console.warn(`web UI browser test skipped: ${CHROMIUM} is absent (apt-get install -y chromium)`);
}

type Browser = import('playwright-core').Browser;
type Page = import('playwright-core').Page;

describe.skipIf(!hasChromium)('web UI in Chromium: the whole story', { timeout: 120_000 }, () => {
  const file = trackerPerFile();
  const root = tempDir('coterie-ui-browser-');
  const peers: ChildProcess[] = [];
  let browser: Browser;
  const dirs = {
    alice: join(root.path, 'alice'),
    bob: join(root.path, 'bob'),
    carol: join(root.path, 'carol'),
  };
  /** carol has no page: the CLI drives her peer. */
  const carol = async (...args: string[]) => {
    const r = await coterie(['--data-dir', dirs.carol, ...args]);
    if (r.code !== 0) throw new Error(`coterie ${args.join(' ')}: ${r.err}`);
    return r.out;
  };
  const pages = {} as Record<'alice' | 'bob', Page>;
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    for (const [name, dir] of Object.entries(dirs)) {
      const p = await startProcess(
        // Seeders capped at 1 MiB/s each: the 6 MiB download takes seconds, long enough to watch.
        [
          'peer',
          '--data-dir',
          dir,
          '--tracker',
          file.tracker.url,
          '--no-shell',
          '--upload-limit-kib',
          '1024',
        ],
        /^peer [0-9a-f]{64} serving on .* ui http/,
        join(root.path, `${name}.out`),
      );
      peers.push(p.child);
    }
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
    mkdirSync(SHOTS, { recursive: true });
    for (const name of ['alice', 'bob'] as const) {
      // bypassCSP only so that axe-core can be injected for the accessibility check; the CSP
      // itself is tested in web-ui-security.test.ts.
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, bypassCSP: true });
      const page = await context.newPage();
      // A refused command is an answer shown beside its control, not an error of the page:
      // Chromium's own "Failed to load resource" line for its 4xx status is left out.
      page.on('console', (m) => {
        if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) {
          consoleErrors.push(`${name}: ${m.text()}`);
        }
      });
      page.on('pageerror', (e) => consoleErrors.push(`${name}: ${e.message}`));
      await page.goto(await loginLink(dirs[name]));
      pages[name] = page;
    }
  }, 90_000);

  afterAll(async () => {
    await browser?.close();
    await Promise.all(peers.map((p) => stop(p)));
    root.remove();
  });

  /** expect.poll with room for a loaded machine (its own default is 1 s). */
  const poll = <T>(fn: () => T | Promise<T>, o: { timeout?: number } = {}) =>
    expect.poll(fn, { timeout: 15_000, ...o });
  const go = async (who: 'alice' | 'bob', page: string) => {
    // Through the nav, as a person does: the page keeps its state (what it sent, the group picked).
    await pages[who].locator(`nav a[href="#/${page}"]`).click();
    await pages[who].locator(`h2#${page}-h`).waitFor();
  };
  const a11y: string[] = [];
  let axeRuns = 0;
  /** A screenshot of the page, and axe-core's serious or critical findings on it. */
  const shot = async (who: 'alice' | 'bob', name: string) => {
    const page = pages[who];
    await page.screenshot({ path: join(SHOTS, `${who}-${name}.png`), fullPage: true });
    await page.addScriptTag({ path: AXE });
    const found = (await page.evaluate(async () => {
      const r = await (
        globalThis as unknown as { axe: { run(): Promise<{ violations: unknown[] }> } }
      ).axe.run();
      return r.violations;
    })) as { id: string; impact: string; nodes: unknown[] }[];
    axeRuns++;
    for (const v of found) {
      if (v.impact === 'serious' || v.impact === 'critical')
        a11y.push(`${name}: ${v.id} (${v.nodes.length})`);
    }
  };
  const form = (who: 'alice' | 'bob', cmd: string) => pages[who].locator(`form[data-command="${cmd}"]`);
  /** Fills a command's form (inputs by name) and submits it, as a person does. */
  const submit = async (who: 'alice' | 'bob', cmd: string, values: Record<string, string>) => {
    for (const [name, value] of Object.entries(values)) {
      await form(who, cmd).locator(`input[name="${name}"]`).fill(value);
    }
    await form(who, cmd).locator('button').click();
  };

  it('logs in through the one-time link, then creates accounts and logs in', async () => {
    for (const who of ['alice', 'bob'] as const) {
      const page = pages[who];
      await page.locator('[data-live="true"]').waitFor();
      await submit(who, 'create_user', { user: who, password: 'password1' });
      // As a person does: log in once the page says the account exists (a login sent while the
      // creation is still on its way to a loaded tracker is refused).
      await poll(() =>
        form(who, 'create_user').locator('[data-done-for=create_user]').textContent(),
      ).toContain(`Account ${who} created`);
      await submit(who, 'login', { user: who, password: 'password1' });
      await poll(() => page.locator('[data-fact=user]').textContent()).toBe(who);
      await shot(who, 'overview');
    }
  });

  it('shows a refusal beside its control, with its code', async () => {
    await submit('alice', 'create_user', { user: 'Not A Name', password: 'password1' });
    await poll(() =>
      form('alice', 'create_user').locator('[data-error-for=create_user] code').textContent(),
    ).toBe('INVALID_NAME');
  });

  it('creates a group, asks to join, accepts', async () => {
    await go('alice', 'groups');
    await submit('alice', 'create_group', { group: 'films' });
    await pages.alice.locator('[data-group-row="films"]').waitFor();
    await go('bob', 'groups');
    await submit('bob', 'join_group', { group: 'films' });
    await poll(() => pages.bob.locator('[data-group-row="films"] [data-standing]').textContent()).toBe(
      'pending',
    );
    const request = pages.alice.locator('[data-request="bob"]');
    await pages.alice.locator('[data-group="films"] button[data-command=list_requests]').click();
    await request.waitFor();
    expect(await request.locator('[data-command=decline_request]').count()).toBe(1);
    await shot('alice', 'groups');
    await request.locator('[data-command=accept_request]').click();
    await go('bob', 'groups');
    await poll(() => pages.bob.locator('[data-group-row="films"] [data-standing]').textContent()).toBe(
      'member',
    );
    await carol('create_user', 'carol', 'password1');
    await carol('login', 'carol', 'password1');
    await carol('join_group', 'films');
    await coterie(['--data-dir', dirs.alice, 'accept_request', 'films', 'carol']);
  });

  it('downloads from two seeders: both in the peer table, the piece map filling, byte-identical', async () => {
    const source = join(root.path, 'film.bin');
    await randomFile(source, 6 * 1024 * 1024 + 123);
    await go('alice', 'files');
    await submit('alice', 'upload_file', { path: source });
    await pages.alice.locator('[data-file="film.bin"]').waitFor();
    await shot('alice', 'files');
    await carol('upload_file', source, 'films');
    await go('bob', 'files');
    await pages.bob.locator('input[name=current-group]').fill('films');
    await pages.bob.locator('input[name=current-group]').press('Enter');
    const row = pages.bob.locator('[data-file="film.bin"]');
    await poll(async () => {
      await pages.bob.locator('button[data-command=list_files]').click();
      return row.locator('td').nth(3).textContent();
    }).toBe('2');
    const dest = join(root.path, 'bob-film.bin');
    await row.locator('input[name=dest]').fill(dest);
    await row.locator('form[data-command=download_file] button').click();
    await go('bob', 'transfers');
    await pages.bob.getByRole('button', { name: 'Peers and pieces of film.bin' }).click();
    const map = pages.bob.locator('[data-transfer] canvas.piece-map');
    await map.waitFor();
    // Every value the map's verified count takes, as the page redraws it from progress events.
    await pages.bob.evaluate(`
      globalThis.mapSeen = [];
      const canvas = document.querySelector('[data-transfer] canvas.piece-map');
      globalThis.mapSeen.push(Number(canvas.dataset.verified));
      new MutationObserver(() => globalThis.mapSeen.push(Number(canvas.dataset.verified)))
        .observe(canvas, { attributes: true, attributeFilter: ['data-verified'] });
    `);
    await pages.bob.locator('[data-state="completed"]').waitFor({ timeout: 60_000 });
    expect(await pages.bob.locator('[data-state="completed"] [data-percent]').textContent()).toBe('100%');
    const pieces = Number(await map.getAttribute('data-pieces'));
    expect(pieces).toBeGreaterThan(40);
    await poll(() => map.getAttribute('data-verified')).toBe(String(pieces));
    const seen = (await pages.bob.evaluate('globalThis.mapSeen')) as number[];
    expect(
      seen.some((n) => n > 0 && n < pieces),
      `map values seen: ${seen.join(',')}`,
    ).toBe(true);
    // Both seeders, each with its address and the pieces it served.
    const peerRows = pages.bob.locator('[data-transfer] [data-peer]');
    expect(await peerRows.count()).toBe(2);
    const served: Record<string, number> = {};
    for (const r of await peerRows.all()) {
      const text = (await r.textContent()) ?? '';
      expect(text).toMatch(/127\.0\.0\.1:\d+/);
      served[text.includes('alice') ? 'alice' : text.includes('carol') ? 'carol' : text] = Number(
        await r.locator('[data-pieces-from]').textContent(),
      );
    }
    expect(Object.keys(served).sort()).toEqual(['alice', 'carol']);
    expect(served.alice! + served.carol!).toBe(pieces);
    expect(served.alice).toBeGreaterThan(0);
    expect(served.carol).toBeGreaterThan(0);
    await shot('bob', 'transfers');
    expect(readFileSync(dest).equals(readFileSync(source))).toBe(true);
  });

  it("shows a file's versions, locks and unlocks it, and offers storage with a coded refusal first", async () => {
    const alice = pages.alice;
    await go('alice', 'files');
    const row = alice.locator('[data-file="film.bin"]');
    await row.locator('details.manage summary').click();
    await row.locator('[data-versions="film.bin"] [data-version="1"]').waitFor();
    await row.locator('form[data-command=lock_file] input[name=ttl]').fill('5m');
    await row.locator('form[data-command=lock_file] button').click();
    await poll(() => row.locator('[data-lock]').getAttribute('data-lock')).toBe('alice');
    await row.locator('button[data-command=unlock_file]').click();
    await poll(() => row.locator('[data-lock]').getAttribute('data-lock')).toBe('');
    await submit('alice', 'offer_storage', { quota: 'lots' });
    await poll(() =>
      form('alice', 'offer_storage').locator('[data-error-for=offer_storage] code').textContent(),
    ).toBe('USAGE');
    await submit('alice', 'offer_storage', { quota: '64MiB' });
    await alice.locator('[data-storage="films"] [data-storage-peer]').waitFor();
    await shot('alice', 'files');
  });

  it('does not poll: an idle page sends no command', async () => {
    let commands = 0;
    const count = (r: { url(): string }) => {
      if (r.url().includes('/api/command')) commands++;
    };
    pages.bob.on('request', count);
    await new Promise((r) => setTimeout(r, 3000));
    pages.bob.off('request', count);
    expect(commands).toBe(0);
  });

  it('sends a direct message that goes Sent → Delivered → Read', async () => {
    await go('alice', 'messages');
    await submit('alice', 'send_msg', { user: 'bob', message: 'hello bob' });
    const sent = pages.alice.locator('[data-mark]').first();
    await sent.waitFor();
    const marks = new Set<string>();
    marks.add((await sent.getAttribute('data-mark')) ?? '');
    // Each mark read once and kept: the one the poll compares is the one recorded.
    const mark = async () => {
      const m = (await sent.getAttribute('data-mark')) ?? '';
      marks.add(m);
      return m;
    };
    await poll(mark).toBe('delivered');
    await go('bob', 'messages'); // shows the inbox: read
    await pages.bob.locator('[data-conversation="@alice"] li.in', { hasText: 'hello bob' }).waitFor();
    await shot('bob', 'messages');
    await poll(mark, { timeout: 20_000 }).toBe('read');
    // It went through Delivered before Read (and through Sent or Pending before that).
    expect([...marks].filter((m) => m !== 'pending' && m !== 'sent')).toEqual(['delivered', 'read']);
    await shot('alice', 'messages');
  });

  it('groups conversations per correspondent and group, live, with the sent history kept', async () => {
    await submit('bob', 'send_group_msg', { group: 'films', message: 'popcorn ready' });
    await carol('send_msg', 'alice', 'hi from carol');
    const alice = pages.alice;
    // Pushed while the page is open: each lands in its own conversation.
    await alice.locator('[data-conversation="@carol"] li.in', { hasText: 'hi from carol' }).waitFor();
    await alice.locator('[data-conversation="#films"] li.in', { hasText: 'popcorn ready' }).waitFor();
    const mine = pages.bob.locator('[data-conversation="#films"] li.out', { hasText: 'popcorn ready' });
    await mine.waitFor();
    expect(['sent', 'delivered', 'read']).toContain(await mine.getAttribute('data-mark'));
    // A reloaded page gets the history back from the daemon (show_sent), marks included.
    await alice.reload();
    await alice.locator('h2#messages-h').waitFor();
    await alice
      .locator('[data-conversation="@bob"] li.out[data-mark="read"]', { hasText: 'hello bob' })
      .waitFor();
    const order = await alice
      .locator('[data-conversation]')
      .evaluateAll((els) => els.map((e) => e.getAttribute('data-conversation')));
    expect([...order].sort()).toEqual(['#films', '@bob', '@carol']);
    await shot('alice', 'messages');
    await go('alice', 'groups'); // the reload forgot the group picked: pick it again
    await alice.getByRole('button', { name: 'films', exact: true }).click();
  });

  it('publishes to a topic another page subscribes to, and it shows in that page live', async () => {
    await go('alice', 'topics');
    await submit('alice', 'create_topic', { topic: 'news' });
    await pages.alice.locator('[data-topic="news"]').waitFor();
    await go('bob', 'topics');
    await pages.bob.locator('button[data-command=list_topics]').click();
    await pages.bob.locator('[data-topic="news"] button[data-command=subscribe]').click();
    await poll(() =>
      pages.bob.locator('[data-topic="news"] [data-subscribed]').getAttribute('data-subscribed'),
    ).toBe('true');
    await submit('alice', 'publish', { topic: 'news', message: 'premiere tonight' });
    await pages.bob.locator('.topic-feed li', { hasText: 'premiere tonight' }).waitFor({ timeout: 15_000 });
    await shot('alice', 'topics');
    await shot('bob', 'topics');
  });

  it('offers every command of the control API on its page', async () => {
    const missing: string[] = [];
    for (const [cmd, page] of Object.entries(COMMAND_PAGES)) {
      if (cmd === 'accept_request' || cmd === 'decline_request') continue; // seen with bob's request
      await go('alice', page);
      if (page === 'groups') await pages.alice.getByRole('button', { name: 'films', exact: true }).click();
      if ((await pages.alice.locator(`[data-command="${cmd}"]`).count()) === 0)
        missing.push(`${cmd} on ${page}`);
    }
    expect(missing).toEqual([]);
    await shot('alice', 'transfers');
    expect(consoleErrors).toEqual([]);
  });

  /** The page's controls that a person can reach: visible, enabled, not folded away. */
  const CONTROLS = 'a[href], button:not([disabled]), input:not([disabled]), summary';

  it('is usable 360 px wide: no horizontal scroll, every control within the screen', async () => {
    const context = await browser.newContext({ viewport: { width: 360, height: 740 }, bypassCSP: true });
    const narrow = await context.newPage();
    narrow.on('pageerror', (e) => consoleErrors.push(`narrow: ${e.message}`));
    try {
      await narrow.goto(await loginLink(dirs.alice));
      await narrow.locator('[data-live="true"]').waitFor();
      const problems: string[] = [];
      for (const p of ['overview', 'groups', 'files', 'transfers', 'messages', 'topics']) {
        await narrow.locator(`nav a[href="#/${p}"]`).click();
        await narrow.locator(`h2#${p}-h`).waitFor();
        if (p === 'groups') await narrow.getByRole('button', { name: 'films', exact: true }).click();
        if (p === 'transfers')
          await narrow.getByRole('button', { name: 'Peers and pieces of film.bin' }).count();
        const found = (await narrow.evaluate(`(() => {
          const out = [];
          const width = document.documentElement.clientWidth;
          if (document.documentElement.scrollWidth > width) out.push('page scrolls sideways: ' + document.documentElement.scrollWidth);
          for (const el of document.querySelectorAll(${JSON.stringify(CONTROLS)})) {
            if (!el.checkVisibility({ visibilityProperty: true })) continue; // folded away (a closed details)
            const r = el.getBoundingClientRect();
            if (r.left < 0 || r.right > width + 1) out.push((el.getAttribute('data-command') || el.textContent || el.name || el.tagName).trim() + ' at ' + Math.round(r.left) + '..' + Math.round(r.right));
          }
          return out;
        })()`)) as string[];
        problems.push(...found.map((f) => `${p}: ${f}`));
        await narrow.screenshot({ path: join(SHOTS, `alice-360-${p}.png`), fullPage: true });
      }
      expect(problems).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('is usable by keyboard alone: Tab reaches every control of each page, each with a visible focus', async () => {
    const page = pages.alice;
    const problems: string[] = [];
    for (const p of ['overview', 'groups', 'files', 'transfers', 'messages', 'topics']) {
      await go('alice', p);
      const total = (await page.evaluate(`(() => {
        document.activeElement?.blur();
        let n = 0;
        for (const el of document.querySelectorAll(${JSON.stringify(CONTROLS)})) {
          if (el.checkVisibility({ visibilityProperty: true })) { el.dataset.kbd = String(n++); }
          else delete el.dataset.kbd;
        }
        return n;
      })()`)) as number;
      const reached = new Set<string>();
      // Scrollable regions take a Tab stop too (Chromium makes them focusable): room for them.
      for (let i = 0; i < 2 * total + 10 && reached.size < total; i++) {
        await page.keyboard.press('Tab');
        const at = (await page.evaluate(`(() => {
          const el = document.activeElement;
          if (!el || el.dataset.kbd === undefined) return null;
          const s = getComputedStyle(el);
          const visible = s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2;
          return { id: el.dataset.kbd, visible, what: (el.getAttribute('data-command') || el.textContent || el.name || '').trim() };
        })()`)) as { id: string; visible: boolean; what: string } | null;
        if (at === null) continue;
        reached.add(at.id);
        if (!at.visible) problems.push(`${p}: no visible focus on ${at.what}`);
      }
      if (reached.size < total) {
        const missed = (await page.evaluate(
          `[...document.querySelectorAll('[data-kbd]')].filter((e) => !${JSON.stringify([...reached])}.includes(e.dataset.kbd)).map((e) => (e.getAttribute('data-command') || e.textContent || e.name || e.tagName).trim())`,
        )) as string[];
        problems.push(`${p}: Tab reached ${reached.size} of ${total} controls, not ${missed.join(', ')}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it('has no serious or critical accessibility finding (axe-core) on any page', () => {
    expect(axeRuns).toBeGreaterThanOrEqual(10);
    expect(a11y).toEqual([]);
  });
});
