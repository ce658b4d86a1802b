import { signal } from '@preact/signals';
import { render } from 'preact';
import { endSession, followEvents, loadSession } from './api.js';
import { PAGES, type PageName } from './controls.js';
import { html } from './html.js';
import { loadStatus, OverviewPage } from './pages-account.js';
import { FilesPage } from './pages-files.js';
import { GroupsPage } from './pages-groups.js';
import { MessagesPage, TopicsPage } from './pages-messages.js';
import { TransfersPage } from './pages-transfers.js';
import { applyFrame, connected, onRefreshStatus } from './state.js';

const PAGE_VIEWS: Record<PageName, () => unknown> = {
  overview: OverviewPage,
  groups: GroupsPage,
  files: FilesPage,
  transfers: TransfersPage,
  messages: MessagesPage,
  topics: TopicsPage,
};

function pageOfHash(): PageName {
  const name = location.hash.replace(/^#\/?/, '');
  return PAGES.some((p) => p.name === name) ? (name as PageName) : 'overview';
}

const page = signal<PageName>(pageOfHash());
addEventListener('hashchange', () => {
  page.value = pageOfHash();
});

function App() {
  const View = PAGE_VIEWS[page.value];
  return html`<header>
      <h1>Coterie</h1>
      <nav aria-label="pages">
        ${PAGES.map(
          (p) =>
            html`<a href=${`#/${p.name}`} aria-current=${page.value === p.name ? 'page' : undefined}>${p.title}</a>`,
        )}
      </nav>
      <span class=${connected.value ? 'live on' : 'live off'} role="status" data-live=${connected.value}>
        ${connected.value ? 'live' : 'reconnecting…'}
      </span>
      <button type="button" class="link" onClick=${() => void endSession().then(() => location.reload())}>
        Close this page's login
      </button>
    </header>
    <main><${View} /></main>`;
}

function LoggedOut() {
  return html`<main class="logged-out">
    <h1>Coterie</h1>
    <p>This page has no login. Run <code>coterie ui</code> and open the link it prints.</p>
  </main>`;
}

async function start(): Promise<void> {
  const root = document.getElementById('app')!;
  root.textContent = ''; // the static "Loading…": Preact renders beside what it did not draw
  const session = await loadSession().catch(() => undefined);
  if (session === undefined) {
    render(html`<${LoggedOut} />`, root);
    return;
  }
  onRefreshStatus(loadStatus);
  followEvents(applyFrame, (on) => {
    connected.value = on;
  });
  render(html`<${App} />`, root);
}

void start();
