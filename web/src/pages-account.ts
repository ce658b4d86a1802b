import { useEffect } from 'preact/hooks';
import { run } from './api.js';
import { html } from './html.js';
import { feed, status } from './state.js';
import { CommandButton, CommandForm } from './widgets.js';

export function loadStatus(): void {
  run('status', [])
    .then((s) => {
      status.value = s;
    })
    .catch(() => {});
}

/** Overview: who and where this peer is, and the account commands. */
export function OverviewPage() {
  useEffect(loadStatus, []);
  const s = status.value;
  return html`<section aria-labelledby="overview-h">
    <h2 id="overview-h">Overview</h2>
    <dl class="facts">
      <dt>User</dt><dd data-fact="user">${s?.userId ?? 'not logged in'}</dd>
      <dt>Peer id</dt><dd><code class="id">${s?.peerId ?? '…'}</code></dd>
      <dt>Serving</dt><dd>${s === null ? '…' : `${s.serving.host}:${s.serving.port}`}</dd>
      <dt>Tracker</dt><dd>${s?.tracker ?? 'none'} (${s?.session ?? '…'})</dd>
      <dt>Cluster</dt><dd>${s?.trackers.join(', ') ?? '…'}</dd>
    </dl>
    ${
      s !== null && s.changedShares.length > 0
        ? html`<ul class="warnings">${s.changedShares.map((c) => html`<li>${c.message}</li>`)}</ul>`
        : null
    }
    <${CommandButton} cmd="status" args=${[]} label="Refresh" onDone=${(r: typeof s) => {
      status.value = r;
    }} />
    <div class="cards">
      <div class="card">
        <h3>Log in</h3>
        <${CommandForm}
          cmd="login"
          submit="Log in"
          fields=${[
            { name: 'user', label: 'User id' },
            { name: 'password', label: 'Password', type: 'password' },
          ]}
          clear=${['password']}
          onDone=${loadStatus}
        />
      </div>
      <div class="card">
        <h3>Create an account</h3>
        <${CommandForm}
          cmd="create_user"
          submit="Create account"
          fields=${[
            { name: 'user', label: 'New user id' },
            { name: 'password', label: 'Password', type: 'password' },
          ]}
          clear=${['password']}
        />
      </div>
      <div class="card">
        <h3>Session</h3>
        <${CommandButton} cmd="logout" args=${[]} label="Log out" onDone=${loadStatus} />
        <${CommandButton}
          cmd="quit"
          args=${[]}
          label="Stop the daemon"
          title="downloads pause and resume at the next start"
        />
      </div>
    </div>
    <h3>Events</h3>
    <ol class="feed" aria-live="polite">${feed.value.map((line) => html`<li>${line}</li>`)}</ol>
  </section>`;
}
