import { useSignal } from '@preact/signals';
import { Component } from 'preact';
import { useEffect, useRef } from 'preact/hooks';
import type { DownloadView, LimitsView } from '../../src/protocol/control.js';
import { hasPiece, type TransferPeer, type TransferProgress } from '../../src/protocol/peer-events.js';
import { formatBytes, formatEta, formatRate, percent } from './format.js';
import { html } from './html.js';
import { downloads, transfers } from './state.js';
import { CommandButton, CommandForm, load, useDrawWindow } from './widgets.js';

/** Base64 to bytes (the bitfield of a progress event). */
function bitsOf(p: TransferProgress): Uint8Array {
  const text = atob(p.bitfield);
  const out = new Uint8Array(text.length);
  for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  return out;
}

/** The page's colours (light or dark, from app.css) for the canvas, which CSS does not reach. */
function colour(el: Element, name: string): string {
  return getComputedStyle(el).getPropertyValue(name).trim() || 'gray';
}

/**
 * The download's pieces as a grid of cells, verified ones filled: redrawn
 * on each progress event (at most 4 a second). Up to 65,536 pieces: past
 * one cell per 3×3 pixels, a cell covers several pieces and fills in
 * proportion.
 */
function PieceMap({ p }: { p: TransferProgress }) {
  const ref = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    const canvas = ref.current;
    if (canvas === null) return;
    const width = Math.max(120, Math.floor(canvas.clientWidth || 600));
    const per = Math.max(1, Math.ceil(p.pieceCount / Math.floor((width / 3) * 40)));
    const cells = Math.ceil(p.pieceCount / per);
    const side = Math.max(3, Math.min(14, Math.floor(Math.sqrt((width * 160) / Math.max(1, cells)))));
    const columns = Math.max(1, Math.floor(width / side));
    const rows = Math.ceil(cells / columns);
    const ratio = window.devicePixelRatio || 1;
    canvas.width = width * ratio;
    canvas.height = rows * side * ratio;
    canvas.style.height = `${rows * side}px`;
    const g = canvas.getContext('2d');
    if (g === null) return;
    g.scale(ratio, ratio);
    const bits = bitsOf(p);
    const [done, missing] = [colour(canvas, '--accent'), colour(canvas, '--line')];
    for (let c = 0; c < cells; c++) {
      let have = 0;
      const end = Math.min(p.pieceCount, (c + 1) * per);
      for (let i = c * per; i < end; i++) if (hasPiece(bits, i)) have++;
      const x = (c % columns) * side;
      const y = Math.floor(c / columns) * side;
      g.fillStyle = missing;
      g.fillRect(x, y, side - 1, side - 1);
      if (have > 0) {
        g.fillStyle = done;
        const h = ((side - 1) * have) / (end - c * per);
        g.fillRect(x, y + side - 1 - h, side - 1, h);
      }
    }
  }, [p]);
  const label = `Piece map: ${p.piecesVerified} of ${p.pieceCount} pieces verified`;
  return html`<canvas ref=${ref} class="piece-map" role="img" aria-label=${label}
    data-pieces=${p.pieceCount} data-verified=${p.piecesVerified}>${label}</canvas>`;
}

function stateOf(peer: TransferPeer): string {
  if (peer.state === 'banned') return `banned: ${peer.banReason ?? 'no reason given'}`;
  if (peer.connection !== 'ready')
    return peer.lastError === undefined ? peer.connection : `${peer.connection}: ${peer.lastError}`;
  return peer.state === 'active' ? 'connected' : peer.state;
}

function PeerTable({ p }: { p: TransferProgress }) {
  return html`<div class="scroll"><table data-peers=${p.id}>
    <caption>Peers of this download</caption>
    <thead><tr><th>Peer</th><th>Address</th><th>Rate</th><th>Pieces</th><th>Score</th><th>State</th></tr></thead>
    <tbody>${p.peers.map(
      (x) => html`<tr data-peer=${x.peerId} data-peer-state=${x.state}>
        <td>${x.userId ?? ''} <code class="id">${x.peerId.slice(0, 12)}</code></td>
        <td><code>${x.address}</code></td>
        <td>${formatRate(x.rateBytesPerSec)}</td>
        <td data-pieces-from>${x.piecesVerified}</td>
        <td>${x.score.toFixed(2)}</td>
        <td>${stateOf(x)}</td></tr>`,
    )}</tbody>
  </table></div>`;
}

/** One download opened: its totals, its piece map and its peers, as the daemon reports them. */
function TransferDetail({ d, p }: { d: DownloadView; p: TransferProgress | undefined }) {
  return html`<section class="card transfer" aria-labelledby="transfer-h" data-transfer=${d.id}>
    <h3 id="transfer-h">${d.fileName} <small>#${d.id}, ${d.state}</small></h3>
    ${
      p === undefined
        ? html`<p class="muted">No progress seen from this page (it ran before the page opened).</p>`
        : html`<p>${p.piecesVerified} / ${p.pieceCount} pieces, ${formatBytes(p.doneBytes)} of
            ${formatBytes(p.size)}, ${formatRate(p.rateBytesPerSec)}</p>
          <${PieceMap} p=${p} />
          <${PeerTable} p=${p} />`
    }
  </section>`;
}

/** Pause, resume and cancel, each shown when it applies to the download's state. */
function DownloadActions({ d }: { d: DownloadView }) {
  const id = String(d.id);
  const refresh = () => load('show_downloads', [], (r) => (downloads.value = r.downloads));
  const live = d.state === 'active' || d.state === 'waiting';
  return html`<span class="actions">
    ${live ? html`<${CommandButton} cmd="pause_download" args=${[id]} label="Pause" onDone=${refresh} />` : null}
    ${
      d.state === 'paused' || d.state === 'failed' || d.state === 'cancelled'
        ? html`<${CommandButton} cmd="resume_download" args=${[id]} label="Resume" onDone=${refresh} />`
        : null
    }
    ${
      d.state === 'completed' || d.state === 'cancelled'
        ? null
        : html`<${CommandButton} cmd="cancel_download" args=${[id]} label="Cancel"
            confirm=${`Cancel ${d.fileName} and delete what it downloaded?`} onDone=${refresh} />`
    }
  </span>`;
}

interface RowProps {
  d: DownloadView;
  open: (id: number) => void;
}

/**
 * One row, drawn again only when its download changed (a progress event, a push of the table):
 * adding a block of rows to a long table leaves the rows already drawn alone.
 */
class TransferRow extends Component<RowProps> {
  override shouldComponentUpdate(next: RowProps): boolean {
    return next.d !== this.props.d || next.open !== this.props.open;
  }

  override render() {
    return html`<${TransferRowView} d=${this.props.d} open=${() => this.props.open(this.props.d.id)} />`;
  }
}

function TransferRowView({ d, open }: { d: DownloadView; open: () => void }) {
  const pct = percent(d.doneBytes, d.size);
  return html`<tr data-download=${d.id} data-state=${d.state}>
    <td><button type="button" class="link" onClick=${open} aria-label=${`Peers and pieces of ${d.fileName}`}>
      ${d.fileName}</button><br /><small>${d.groupId} → ${d.dest}</small></td>
    <td><progress max="100" value=${pct} aria-label=${`${d.fileName} ${pct}%`}></progress>
      <span data-percent>${pct}%</span></td>
    <td>${formatBytes(d.doneBytes)} / ${formatBytes(d.size)}</td>
    <td>${formatRate(d.rateBytesPerSec)}</td>
    <td>${d.state === 'active' ? formatEta(d.size - d.doneBytes, d.rateBytesPerSec) : '—'}</td>
    <td>${d.peers}</td>
    <td>${d.state === 'waiting' ? 'waiting for seeders' : d.state}${d.error === null ? '' : `: ${d.error}`}
      <${DownloadActions} d=${d} />
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

/** Pause, resume or cancel a download by its id or file name (the rows' buttons do it by row). */
function ByName() {
  const refresh = () => load('show_downloads', [], (r) => (downloads.value = r.downloads));
  const field = [{ name: 'download', label: 'download (id or file name)' }];
  return html`<details class="card"><summary>A download by id or name</summary>
    <${CommandForm} cmd="pause_download" submit="Pause" fields=${field} onDone=${refresh} />
    <${CommandForm} cmd="resume_download" submit="Resume" fields=${field} onDone=${refresh} />
    <${CommandForm} cmd="cancel_download" submit="Cancel" fields=${field} onDone=${refresh} />
  </details>`;
}

/** Rows drawn at first: a screenful and more, at 1920 × 1080 (a row is about 3 lines of text). */
const FIRST_ROWS = 40;
/** Rows added per idle moment after the first screenful (few blocks: each one lays the whole table out again). */
const ROWS_PER_IDLE = 320;
/** Transfers: each download live (progress events); one opened shows its peers and piece map. */
export function TransfersPage() {
  const opened = useSignal<number | null>(null);
  const open = useRef((id: number) => {
    opened.value = id;
  }).current;
  const all = downloads.value;
  const drawn = useDrawWindow(all.length, FIRST_ROWS, ROWS_PER_IDLE);
  const d = all.find((x) => x.id === opened.value);
  return html`<section aria-labelledby="transfers-h">
    <h2 id="transfers-h">Transfers</h2>
    <${CommandButton} cmd="show_downloads" args=${[]} label="Refresh" onDone=${(r: {
      downloads: DownloadView[];
    }) => {
      downloads.value = r.downloads;
    }} />
    <div class="scroll"><table data-rows=${all.length} data-drawn=${drawn}
      aria-busy=${drawn < all.length ? 'true' : 'false'}>
      <thead><tr><th>File</th><th>Done</th><th>Bytes</th><th>Rate</th><th>ETA</th><th>Peers</th><th>State</th></tr></thead>
      <tbody>${all
        .slice(0, drawn)
        .map((x) => html`<${TransferRow} key=${x.id} d=${x} open=${open} />`)}</tbody>
    </table></div>
    ${all.length === 0 ? html`<p class="muted">No downloads yet.</p>` : null}
    <${ByName} />
    ${d === undefined ? null : html`<${TransferDetail} d=${d} p=${transfers.value.get(d.id)} />`}
    <${LimitsPanel} />
  </section>`;
}

/** Bandwidth limits and the weekly schedule (issue 17): what is in force, and the forms to change it. */
function LimitsPanel() {
  const limits = useSignal<LimitsView | null>(null);
  const show = (r: LimitsView) => {
    limits.value = r;
  };
  const l = limits.value;
  const rate = (n: number) => (n === 0 ? 'unlimited' : formatRate(n));
  return html`<div class="limits">
    <h3>Bandwidth</h3>
    <${CommandButton} cmd="show_limits" args=${[]} label="Show limits" onDone=${show} />
    ${
      l === null
        ? null
        : html`<p data-limits>upload ${rate(l.global.uploadBytesPerSec)}, download ${rate(l.global.downloadBytesPerSec)};
        schedule: ${l.schedule.mode} (${l.schedule.slot})</p>`
    }
    <${CommandForm} cmd="set_limits" submit="Set limits" onDone=${show}
      fields=${[
        { name: 'group', label: 'group (empty: all)', option: '--group', optional: true },
        { name: 'upload', label: 'upload (20MiB/s, 0 = unlimited)', option: '--upload', optional: true },
        {
          name: 'download',
          label: 'download (50MiB/s, 0 = unlimited)',
          option: '--download',
          optional: true,
        },
      ]} />
    <${CommandForm} cmd="set_schedule" submit="Set schedule" onDone=${show}
      fields=${[
        { name: 'days', label: 'days (mon-fri, sat,sun, daily)' },
        { name: 'hours', label: 'hours (18:00-23:00)' },
        { name: 'mode', label: 'full, limited, upload-only or paused' },
      ]} />
  </div>`;
}
