import { useSignal } from '@preact/signals';
import { useEffect } from 'preact/hooks';
import type { CommandName, ControlCommands } from '../../src/protocol/control.js';
import { run, UiError } from './api.js';
import { html } from './html.js';

export interface Field {
  name: string;
  label: string;
  type?: 'text' | 'password' | 'number';
  /** Left out of the words when empty. */
  optional?: boolean;
  /** A word put before the value (`--group`, `--from`). */
  option?: string;
  value?: string;
}

type Result<K extends CommandName> = ControlCommands[K]['result'];

/**
 * Runs a listing command for a view as it opens; a refusal here stays quiet (the view's own
 * Refresh control runs the same command and shows it beside itself).
 */
export function load<K extends CommandName>(cmd: K, args: string[], then: (result: Result<K>) => void): void {
  run(cmd, args)
    .then(then)
    .catch(() => {});
}

/** A refusal beside its control: the code first, as the CLI prints it. */
export function ErrorNote({ cmd, error }: { cmd: string; error: UiError | null }) {
  if (error === null) return null;
  return html`<p class="error" role="alert" data-error-for=${cmd}>
    <code>${error.code}</code> ${error.message}
  </p>`;
}

function asUiError(err: unknown): UiError {
  return err instanceof UiError ? err : new UiError('INTERNAL', String(err));
}

/**
 * One command as a form: its words from the fields, in order. The answer goes
 * to onDone; a refusal shows beside the form with its code. Every form is
 * marked data-command=NAME (the parity test finds it so).
 */
export function CommandForm<K extends CommandName>(props: {
  cmd: K;
  fields: Field[];
  submit: string;
  /** Words before the fields' (the row's group and file) and after them. */
  prefix?: string[];
  suffix?: string[];
  flags?: string[];
  onDone?: (result: Result<K>) => void;
  /** Sees the field values as submitted (before `clear` empties some). */
  onCapture?: (values: Record<string, string>) => void;
  clear?: string[];
  /** Said beside the form once the command succeeded, for commands whose answer shows nowhere else. */
  done?: (values: Record<string, string>) => string;
}) {
  const values = useSignal<Record<string, string>>(
    Object.fromEntries(props.fields.map((f) => [f.name, f.value ?? ''])),
  );
  const error = useSignal<UiError | null>(null);
  const doneNote = useSignal<string | null>(null);
  const busy = useSignal(false);
  const submit = async (ev: Event) => {
    ev.preventDefault();
    const submitted = values.value;
    const words: string[] = [];
    for (const f of props.fields) {
      const v = values.value[f.name] ?? '';
      if (f.optional && v === '') continue;
      if (f.option !== undefined) words.push(f.option);
      words.push(v);
    }
    props.onCapture?.(values.value);
    busy.value = true;
    error.value = null;
    doneNote.value = null;
    try {
      const result = await run(props.cmd, [
        ...(props.prefix ?? []),
        ...words,
        ...(props.suffix ?? []),
        ...(props.flags ?? []),
      ]);
      for (const name of props.clear ?? []) values.value = { ...values.value, [name]: '' };
      doneNote.value = props.done?.(submitted) ?? null;
      props.onDone?.(result);
    } catch (err) {
      error.value = asUiError(err);
    } finally {
      busy.value = false;
    }
  };
  return html`<form class="command" data-command=${props.cmd} onSubmit=${submit}>
    ${props.fields.map(
      (f) => html`<label>
        <span>${f.label}</span>
        <input
          name=${f.name}
          type=${f.type ?? 'text'}
          autocomplete=${f.type === 'password' ? 'current-password' : 'off'}
          required=${!f.optional}
          value=${values.value[f.name]}
          onInput=${(e: Event) => {
            values.value = { ...values.value, [f.name]: (e.target as HTMLInputElement).value };
          }}
        />
      </label>`,
    )}
    <button type="submit" disabled=${busy.value}>${props.submit}</button>
    <${ErrorNote} cmd=${props.cmd} error=${error.value} />
    ${doneNote.value === null ? null : html`<p class="done" role="status" data-done-for=${props.cmd}>${doneNote.value}</p>`}
  </form>`;
}

/** One command as a button (a row's accept, leave, stop sharing…). */
export function CommandButton<K extends CommandName>(props: {
  cmd: K;
  args: string[];
  label: string;
  title?: string;
  /** Asked first (window.confirm) for what cannot be undone: delete, withdraw at once. */
  confirm?: string;
  onDone?: (result: Result<K>) => void;
}) {
  const error = useSignal<UiError | null>(null);
  const busy = useSignal(false);
  const click = async () => {
    if (props.confirm !== undefined && !window.confirm(props.confirm)) return;
    busy.value = true;
    error.value = null;
    try {
      props.onDone?.(await run(props.cmd, props.args));
    } catch (err) {
      error.value = asUiError(err);
    } finally {
      busy.value = false;
    }
  };
  return html`<span class="command-button">
    <button type="button" data-command=${props.cmd} title=${props.title} disabled=${busy.value} onClick=${click}>
      ${props.label}
    </button>
    <${ErrorNote} cmd=${props.cmd} error=${error.value} />
  </span>`;
}

/** Runs `f` when the browser is idle (or soon, where requestIdleCallback is missing); returns a cancel. */
function whenIdle(f: () => void): () => void {
  if (typeof requestIdleCallback === 'function') {
    const id = requestIdleCallback(f, { timeout: 200 });
    return () => cancelIdleCallback(id);
  }
  const id = setTimeout(f, 0);
  return () => clearTimeout(id);
}

/**
 * How many of `total` items of a long list to draw: `first` now, then `perIdle` more per idle
 * moment, so the list paints at once and still ends whole (Tab, find-in-page and screen readers
 * see every item, unlike a virtual list that keeps only the visible ones in the DOM).
 */
export function useDrawWindow(total: number, first: number, perIdle: number): number {
  const drawn = useSignal(first);
  useEffect(() => {
    if (drawn.value >= total) return;
    return whenIdle(() => {
      drawn.value += perIdle;
    });
  }, [drawn.value, total]);
  return Math.min(total, drawn.value);
}
