import { useSignal } from '@preact/signals';
import { useEffect } from 'preact/hooks';
import type { FileSummary } from '../../src/protocol/api.js';
import type { DownloadView } from '../../src/protocol/control.js';
import { formatBytes, formatEta, formatRate, percent } from './format.js';
import { html } from './html.js';
import { currentGroup, downloads } from './state.js';
import { CommandButton, CommandForm, load } from './widgets.js';

/** The group the files and topics pages act on (shared with the groups page's selection). */
export function GroupPicker() {
  return html`<label class="picker"><span>Group</span>
    <input name="current-group" value=${currentGroup.value ?? ''} onChange=${(e: Event) => {
      currentGroup.value = (e.target as HTMLInputElement).value.trim() || null;
    }} /></label>`;
}

function FileRow({ groupId, file, reload }: { groupId: string; file: FileSummary; reload: () => void }) {
  return html`<tr data-file=${file.name}>
    <td>${file.name}</td><td>${formatBytes(file.size)}</td><td>${file.seeders}</td>
    <td>${file.sharers.join(', ')}</td>
    <td>
      <${CommandForm} cmd="download_file" submit="Download"
        fields=${[{ name: 'dest', label: 'to path' }]}
        flags=${[]}
        prefix=${[groupId, file.name]} />
      <${CommandButton} cmd="stop_share" args=${[groupId, file.name]} label="Stop sharing" onDone=${reload} />
    </td>
  </tr>`;
}

export function FilesPage() {
  const files = useSignal<FileSummary[]>([]);
  const groupId = currentGroup.value;
  const reload = () => {
    if (groupId !== null) load('list_files', [groupId], (r) => (files.value = r.files));
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
          <thead><tr><th>Name</th><th>Size</th><th>Seeders</th><th>Shared by</th><th></th></tr></thead>
          <tbody>${files.value.map((f) => html`<${FileRow} groupId=${groupId} file=${f} reload=${reload} />`)}</tbody>
        </table>
        <div class="card">
          <h3>Share a file</h3>
          <${CommandForm} cmd="upload_file" submit="Share"
            fields=${[{ name: 'path', label: 'Path on this machine' }]}
            suffix=${[groupId]} clear=${['path']} onDone=${reload} />
        </div>`
    }
  </section>`;
}

function TransferRow({ d }: { d: DownloadView }) {
  const pct = percent(d.doneBytes, d.size);
  return html`<tr data-download=${d.id} data-state=${d.state}>
    <td>${d.fileName}<br /><small>${d.groupId} → ${d.dest}</small></td>
    <td><progress max="100" value=${pct} aria-label=${`${d.fileName} ${pct}%`}></progress>
      <span data-percent>${pct}%</span></td>
    <td>${formatBytes(d.doneBytes)} / ${formatBytes(d.size)}</td>
    <td>${formatRate(d.rateBytesPerSec)}</td>
    <td>${d.state === 'active' ? formatEta(d.size - d.doneBytes, d.rateBytesPerSec) : '—'}</td>
    <td>${d.peers}</td>
    <td>${d.state}${d.error === null ? '' : `: ${d.error}`}
      ${
        d.contributions === undefined || d.state !== 'completed'
          ? null
          : html`<ul class="contrib">${d.contributions.map(
              (c) =>
                html`<li>${c.userId ?? c.peerId.slice(0, 12)}: ${c.pieces} pieces, ${formatBytes(c.bytes)}</li>`,
            )}</ul>`
      }</td>
  </tr>`;
}

/** Transfers: the table the daemon pushes each second while one is active. */
export function TransfersPage() {
  return html`<section aria-labelledby="transfers-h">
    <h2 id="transfers-h">Transfers</h2>
    <${CommandButton} cmd="show_downloads" args=${[]} label="Refresh" onDone=${(r: {
      downloads: DownloadView[];
    }) => {
      downloads.value = r.downloads;
    }} />
    <div class="scroll"><table>
      <thead><tr><th>File</th><th>Done</th><th>Bytes</th><th>Rate</th><th>ETA</th><th>Peers</th><th>State</th></tr></thead>
      <tbody>${downloads.value.map((d) => html`<${TransferRow} d=${d} />`)}</tbody>
    </table></div>
    ${downloads.value.length === 0 ? html`<p class="muted">No downloads yet.</p>` : null}
  </section>`;
}
