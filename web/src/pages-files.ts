import { useSignal } from '@preact/signals';
import { useEffect } from 'preact/hooks';
import type { FileSummary, FileVersion, StorageList, VersionList } from '../../src/protocol/api.js';
import { replicasText, seedersText } from '../../src/protocol/replica-text.js';
import { formatBytes, formatTime } from './format.js';
import { html } from './html.js';
import { currentGroup } from './state.js';
import { CommandButton, CommandForm, load } from './widgets.js';

/** The group the files and topics pages act on (shared with the groups page's selection). */
export function GroupPicker() {
  return html`<label class="picker"><span>Group</span>
    <input name="current-group" value=${currentGroup.value ?? ''} onChange=${(e: Event) => {
      currentGroup.value = (e.target as HTMLInputElement).value.trim() || null;
    }} /></label>`;
}

function VersionRows({ list }: { list: VersionList | null }) {
  if (list === null) return null;
  return html`<table data-versions=${list.name}>
    <caption>Current: version ${list.currentVersion}; the group keeps ${list.keep}.
      ${list.lock === undefined ? '' : ` Locked by ${list.lock.holder} until ${formatTime(list.lock.expiresAt)}.`}</caption>
    <thead><tr><th>Version</th><th>Size</th><th>Author</th><th>Shared</th><th>Replicas</th></tr></thead>
    <tbody>${list.versions.map(
      (v: FileVersion) => html`<tr data-version=${v.version}>
        <td>${v.version}</td><td>${formatBytes(v.size)}</td><td>${v.author}</td><td>${formatTime(v.createdAt)}</td>
        <td>${v.replicas === undefined ? '—' : v.replicas.map((r) => `${r.userId} (${r.state})`).join(', ') || '0'}</td></tr>`,
    )}</tbody>
  </table>`;
}

/** A file's versions, update, lock and delete: folded under its row until opened. */
function FileManage({ groupId, file, reload }: { groupId: string; file: FileSummary; reload: () => void }) {
  const versions = useSignal<VersionList | null>(null);
  const at = [groupId, file.name];
  const show = (r: VersionList) => {
    versions.value = r;
  };
  const refresh = () => {
    load('list_versions', at, show);
    reload();
  };
  return html`<details class="manage" onToggle=${(e: Event) => {
    if ((e.target as HTMLDetailsElement).open) load('list_versions', at, show);
  }}>
    <summary>Versions, lock, delete</summary>
    <${CommandButton} cmd="list_versions" args=${at} label="Versions" onDone=${show} />
    <${VersionRows} list=${versions.value} />
    <${CommandForm} cmd="update_file" submit="Update"
      fields=${[
        { name: 'path', label: 'New content from path' },
        {
          name: 'if-version',
          label: 'only if current version is',
          type: 'number',
          optional: true,
          option: '--if-version',
        },
      ]}
      prefix=${at} clear=${['path']} onDone=${refresh} />
    <${CommandForm} cmd="lock_file" submit="Lock"
      fields=${[{ name: 'ttl', label: 'for (5m, 2h; at most 24h)', optional: true, option: '--ttl' }]}
      prefix=${at} onDone=${refresh} />
    <${CommandButton} cmd="unlock_file" args=${at} label="Unlock" onDone=${refresh} />
    <${CommandButton} cmd="delete_file" args=${at} label="Delete every version"
      confirm=${`Delete ${file.name} and all its versions from ${groupId}?`} onDone=${reload} />
  </details>`;
}

function FileRow({ groupId, file, reload }: { groupId: string; file: FileSummary; reload: () => void }) {
  return html`<tr data-file=${file.name}>
    <td>${file.name}</td><td>${file.version ?? 1}</td><td>${formatBytes(file.size)}</td><td data-seeders=${seedersText(file)}>${seedersText(file)}</td>
    <td data-replicas=${replicasText(file.replicas)}>${replicasText(file.replicas)}</td>
    <td>${file.sharers.join(', ')}</td>
    <td data-lock=${file.lock?.holder ?? ''}>${
      file.lock === undefined ? '—' : `${file.lock.holder} until ${formatTime(file.lock.expiresAt)}`
    }</td>
    <td>
      <${CommandForm} cmd="download_file" submit="Download"
        fields=${[
          { name: 'dest', label: 'to path' },
          { name: 'only', label: "a folder's files matching (docs/**)", optional: true, option: '--only' },
        ]}
        flags=${[]}
        prefix=${[groupId, file.name]} />
      <${CommandForm} cmd="select_files" submit="Fetch more of the folder"
        fields=${[{ name: 'globs', label: 'files matching' }]}
        prefix=${[groupId, file.name]} />
      <${CommandButton} cmd="stop_share" args=${[groupId, file.name]} label="Stop sharing" onDone=${reload} />
      <${FileManage} groupId=${groupId} file=${file} reload=${reload} />
    </td>
  </tr>`;
}

/** The group's storage peers: offer space, withdraw it, the replication policy and how it is met. */
function StorageSection({ groupId }: { groupId: string }) {
  const storage = useSignal<StorageList | null>(null);
  const show = (r: StorageList) => {
    storage.value = r;
  };
  const reload = () => load('list_storage', [groupId], show);
  useEffect(reload, [groupId]);
  const health = storage.value?.replication;
  return html`<div class="card" data-storage=${groupId}>
    <h3>Storage peers <${CommandButton} cmd="list_storage" args=${[groupId]} label="Refresh" onDone=${show} /></h3>
    ${
      health === undefined
        ? null
        : html`<p data-replication>
            Replicas: min ${health.min}, max ${health.max}; ${health.storagePeers} storage peers;${' '}
            ${health.underReplicatedFiles} files under-replicated${
              health.repairing ? `; ${health.repairing} being repaired` : ''
            }${health.moving ? `; ${health.moving} being moved` : ''}.
          </p>
          ${health.warning === undefined ? null : html`<p class="warning" role="status" data-warning>${health.warning}</p>`}`
    }
    <div class="scroll"><table>
      <thead><tr><th>Peer</th><th>User</th><th>Zone</th><th>Used / quota</th><th>Replicas</th><th>State</th><th>Last seen</th></tr></thead>
      <tbody>${(storage.value?.peers ?? []).map(
        (p) => html`<tr data-storage-peer=${p.peerId} data-peer-state=${p.state}>
          <td><code class="id">${p.peerId.slice(0, 12)}</code></td><td>${p.userId}</td><td>${p.zone}</td>
          <td>${formatBytes(p.usedBytes)} / ${formatBytes(p.quotaBytes)}</td>
          <td>${p.replicasHeld} held, ${p.replicasAssigned} assigned</td>
          <td>${p.state}${p.withdrawing ? ' (withdrawing)' : ''}</td><td>${formatTime(p.lastHeartbeatAt)}</td></tr>`,
      )}</tbody>
    </table></div>
    ${storage.value?.peers.length === 0 ? html`<p class="muted">No storage peers yet.</p>` : null}
    <${CommandForm} cmd="offer_storage" submit="Offer space"
      fields=${[{ name: 'quota', label: 'Quota (500MiB, 50GiB)' }]} prefix=${[groupId]} onDone=${reload} />
    <${CommandButton} cmd="withdraw_storage" args=${[groupId]} label="Withdraw (after replicas move)" onDone=${reload} />
    <${CommandButton} cmd="withdraw_storage" args=${[groupId, '--now']} label="Withdraw now"
      confirm="End this peer's offer at once, before its replicas live elsewhere?" onDone=${reload} />
    <${CommandForm} cmd="set_replication" submit="Set replication"
      fields=${[
        { name: 'min', label: 'min replicas', type: 'number' },
        { name: 'max', label: 'max replicas', type: 'number', optional: true },
      ]}
      prefix=${[groupId]} onDone=${reload} />
  </div>`;
}

export function FilesPage() {
  const files = useSignal<FileSummary[]>([]);
  const groupId = currentGroup.value;
  const reload = () => {
    if (groupId !== null)
      load('list_files', [groupId], (r) => (files.value = 'folder' in r ? files.value : r.files));
  };
  useEffect(reload, [groupId]);
  return html`<section aria-labelledby="files-h">
    <h2 id="files-h">Files</h2>
    <${GroupPicker} />
    ${
      groupId === null
        ? html`<p class="muted">Pick a group.</p>`
        : html`<${CommandButton} cmd="list_files" args=${[groupId]} label="Refresh" onDone=${(r: {
            files: FileSummary[];
          }) => {
            files.value = r.files;
          }} />
        <table>
          <thead><tr><th>Name</th><th>Version</th><th>Size</th><th>Seeders</th><th>Replicas (live/min)</th><th>Shared by</th><th>Lock</th><th></th></tr></thead>
          <tbody>${files.value.map((f) => html`<${FileRow} groupId=${groupId} file=${f} reload=${reload} />`)}</tbody>
        </table>
        <div class="card">
          <h3>Share a file</h3>
          <${CommandForm} cmd="upload_file" submit="Share"
            fields=${[{ name: 'path', label: 'Path on this machine' }]}
            suffix=${[groupId]} clear=${['path']} onDone=${reload} />
        </div>
        <div class="card">
          <h3>Versions kept</h3>
          <${CommandForm} cmd="set_versions" submit="Set retention"
            fields=${[{ name: 'keep', label: 'Versions to keep per file', type: 'number' }]}
            prefix=${[groupId]} onDone=${reload} />
        </div>
        <${StorageSection} groupId=${groupId} />`
    }
  </section>`;
}
