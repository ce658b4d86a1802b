import { useEffect } from 'preact/hooks';
import { run } from './api.js';
import { html } from './html.js';
import { feed, status } from './state.js';
import { CommandButton, CommandForm } from './widgets.js';

let statusLoading = false;
let statusAgain = false;

/** Reloads the status; a burst of tracker events makes one request at a time, and one more after. */
export function loadStatus(): void {
  if (statusLoading) {
    statusAgain = true;
    return;
  }
  statusLoading = true;
  run('status', [])
    .then((s) => {
      status.value = s;
    })
    .catch(() => {})
    .finally(() => {
      statusLoading = false;
      if (statusAgain) {
        statusAgain = false;
        loadStatus();
      }
    });
}

/** Log in and create an account: a user id and a password each. */
function AccountForm({
  cmd,
  title,
  submit,
  onDone,
  done,
}: {
  cmd: 'login' | 'create_user';
  title: string;
  submit: string;
  onDone?: () => void;
  done?: (values: Record<string, string>) => string;
}) {
  return html`<div class="card">
    <h3>${title}</h3>
    <${CommandForm}
      cmd=${cmd}
      submit=${submit}
      fields=${[
        { name: 'user', label: 'User id' },
        { name: 'password', label: 'Password', type: 'password' },
      ]}
      clear=${['password']}
      onDone=${onDone}
      done=${done}
    />
  </div>`;
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
      <${AccountForm} cmd="login" title="Log in" submit="Log in" onDone=${loadStatus} />
      <${AccountForm}
        cmd="create_user"
        title="Create an account"
        submit="Create account"
        done=${(v: Record<string, string>) => `Account ${v.user} created: log in with it.`}
      />
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
    <ol class="feed" aria-live="polite">${feed.value.map((e) => html`<li key=${e.seq}>${e.text}</li>`)}</ol>
  </section>`;
}
