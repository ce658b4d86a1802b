import { useSignal } from '@preact/signals';
import { useEffect, useRef } from 'preact/hooks';
import type { MessagePage, TopicSummary } from '../../src/protocol/api.js';
import type { InboxMessage, MarkReadResult, SentMessage } from '../../src/protocol/control.js';
import { run } from './api.js';
import { formatTime } from './format.js';
import { html } from './html.js';
import { GroupPicker } from './pages-files.js';
import { currentGroup, inbox, sent, setMark, topicFeed } from './state.js';
import { CommandButton, CommandForm, load, useDrawWindow } from './widgets.js';

/** Entries shown per conversation (the newest); the rest are counted. */
const THREAD_SHOWN = 20;
/** Conversations drawn at first (a screenful and more); the rest come 10 per idle moment. */
const FIRST_THREADS = 8;

type Entry = { at: number; got: InboxMessage } | { at: number; mine: SentMessage };

interface Conversation {
  /** `@user` for a direct conversation, `#group` for a group's channel. */
  key: string;
  title: string;
  entries: Entry[];
  last: number;
}

/** The inbox and the sent messages, one conversation per correspondent or group, the latest first. */
function conversations(got: InboxMessage[], mine: SentMessage[]): Conversation[] {
  const byKey = new Map<string, Conversation>();
  const add = (key: string, title: string, e: Entry) => {
    const c = byKey.get(key) ?? { key, title, entries: [], last: 0 };
    c.entries.push(e);
    c.last = Math.max(c.last, e.at);
    byKey.set(key, c);
  };
  for (const m of got) {
    if (m.kind === 'direct') add(`@${m.sender}`, m.sender, { at: m.sentAt, got: m });
    else if (m.kind === 'group') add(`#${m.groupId}`, `group ${m.groupId}`, { at: m.sentAt, got: m });
  }
  for (const m of mine) {
    if (m.to !== null) add(`@${m.to}`, m.to, { at: m.sentAt, mine: m });
    else add(`#${m.groupId}`, `group ${m.groupId}`, { at: m.sentAt, mine: m });
  }
  for (const c of byKey.values()) c.entries.sort((a, b) => a.at - b.at);
  return [...byKey.values()].sort((a, b) => b.last - a.last);
}

const MARK_TEXT: Record<SentMessage['mark'], string> = {
  pending: 'Pending',
  sent: 'Sent',
  delivered: 'Delivered',
  read: 'Read',
};

function SentItem({ m }: { m: SentMessage }) {
  const readers = m.kind === 'group' && m.readBy.length > 0 ? ` by ${m.readBy.length}` : '';
  return html`<li class="out" data-sent=${m.messageId ?? 'pending'} data-mark=${m.mark}>
    <span class="body">${m.body}</span> <small>${formatTime(m.sentAt)}</small>
    <span class=${`mark mark-${m.mark}`}>${MARK_TEXT[m.mark]}${readers}</span>
    ${
      m.messageId === null
        ? null
        : html`<${CommandButton} cmd="message_status" args=${[m.messageId]} label="Check"
            title=${`Ask the tracker how far message ${m.messageId} got`}
            onDone=${(s: { state: 'sent' | 'delivered' | 'read' }) => setMark(m.messageId!, s.state)} />`
    }
  </li>`;
}

/** The inbox after `mark_read`: that conversation read up to the seq it answered. */
function markedRead(r: MarkReadResult, at: number): void {
  inbox.value = inbox.value.map((m) =>
    m.streamId === r.streamId && m.seq <= r.seq && m.readAt === null ? { ...m, readAt: at } : m,
  );
}

/**
 * Marks a conversation read up to its newest shown message once the conversation is on screen
 * (drawn first, then read: what the user never scrolled to stays unread, and its sender is not
 * told it was read).
 */
function useReadWhenSeen(shown: Entry[], newest: InboxMessage | undefined) {
  const ref = useRef<HTMLElement>(null);
  const unreadId = shown.some((e) => 'got' in e && e.got.readAt === null) ? newest?.messageId : undefined;
  useEffect(() => {
    const el = ref.current;
    if (el === null || unreadId === undefined) return;
    const seen = new IntersectionObserver((records) => {
      if (!records.some((r) => r.isIntersecting)) return;
      seen.disconnect();
      run('mark_read', [unreadId])
        .then((r) => markedRead(r, Date.now()))
        .catch(() => {}); // stays unread; the next sight tries again
    });
    seen.observe(el);
    return () => seen.disconnect();
  }, [unreadId]);
  return ref;
}

function Thread({ c }: { c: Conversation }) {
  const shown = c.entries.slice(-THREAD_SHOWN);
  const earlier = c.entries.length - shown.length;
  let newest: InboxMessage | undefined;
  for (const e of shown) if ('got' in e) newest = e.got;
  const ref = useReadWhenSeen(shown, newest);
  return html`<section ref=${ref} class="card conversation" data-conversation=${c.key}
    aria-label=${`Conversation with ${c.title}`}>
    <h4>${c.title}</h4>
    ${
      newest === undefined
        ? null
        : html`<${CommandButton} cmd="mark_read" args=${[newest.messageId]} label="Mark read"
            title=${`Mark the conversation with ${c.title} read (its sender sees Read)`}
            onDone=${(r: MarkReadResult) => markedRead(r, Date.now())} />`
    }
    ${earlier > 0 ? html`<p class="muted">${earlier} earlier messages</p>` : null}
    <ol class="thread">
      ${shown.map((e) =>
        'mine' in e
          ? html`<${SentItem} key=${e.mine.clientId} m=${e.mine} />`
          : html`<li class="in" key=${e.got.messageId} data-message=${e.got.messageId}
              data-read=${e.got.readAt !== null}>
              <strong>${e.got.sender}</strong> <span class="body">${e.got.body}</span>
              <small>${formatTime(e.got.sentAt)}</small></li>`,
      )}
    </ol>
  </section>`;
}

/**
 * Messages: compose (direct and group), then every conversation: what was received and what this
 * user sent, its Sent / Delivered / Read marks moving as receipts arrive (events, not polling).
 */
export function MessagesPage() {
  useEffect(() => {
    // Peeked (left unread): each conversation is marked read once it is drawn and on screen.
    load('show_messages', ['--peek'], (r) => (inbox.value = r.messages));
    load('show_sent', [], (r) => (sent.value = r.messages));
  }, []);
  const threads = conversations(inbox.value, sent.value);
  const drawn = useDrawWindow(threads.length, FIRST_THREADS, 10);
  return html`<section aria-labelledby="messages-h">
    <h2 id="messages-h">Messages</h2>
    <div class="cards">
      <div class="card">
        <h3>Direct message</h3>
        <${CommandForm} cmd="send_msg" submit="Send"
          fields=${[{ name: 'user', label: 'To user' }, { name: 'message', label: 'Message' }]}
          clear=${['message']} />
      </div>
      <div class="card">
        <h3>Group message</h3>
        <${CommandForm} cmd="send_group_msg" submit="Send to group"
          fields=${[
            { name: 'group', label: 'Group', value: currentGroup.value ?? '' },
            { name: 'message', label: 'Message' },
          ]}
          clear=${['message']} />
      </div>
    </div>
    <h3>Conversations</h3>
    <${CommandForm} cmd="show_messages" submit="Show received" flags=${['--peek']}
      fields=${[
        { name: 'user', label: 'From user', optional: true },
        { name: 'group', label: 'Group', optional: true, option: '--group' },
      ]}
      onDone=${(r: { messages: InboxMessage[] }) => {
        inbox.value = r.messages;
      }} />
    <${CommandButton} cmd="show_sent" args=${[]} label="Reload sent" onDone=${(r: {
      messages: SentMessage[];
    }) => {
      sent.value = r.messages;
    }} />
    <div class="conversations" aria-live="polite" aria-busy=${drawn < threads.length ? 'true' : 'false'}>
      ${threads.slice(0, drawn).map((c) => html`<${Thread} key=${c.key} c=${c} />`)}
    </div>
    ${threads.length === 0 ? html`<p class="muted">No messages yet.</p>` : null}
  </section>`;
}

/** Topics of the current group: subscribe, publish, fetch, and the live feed. */
export function TopicsPage() {
  const topics = useSignal<TopicSummary[]>([]);
  const fetched = useSignal<MessagePage | null>(null);
  const groupId = currentGroup.value;
  const reload = () => {
    if (groupId !== null) load('list_topics', [groupId], (r) => (topics.value = r.topics));
  };
  useEffect(reload, [groupId]);
  if (groupId === null) {
    return html`<section aria-labelledby="topics-h"><h2 id="topics-h">Topics</h2><${GroupPicker} />
      <p class="muted">Pick a group.</p></section>`;
  }
  return html`<section aria-labelledby="topics-h">
    <h2 id="topics-h">Topics</h2>
    <${GroupPicker} />
    <${CommandButton} cmd="list_topics" args=${[groupId]} label="Refresh" onDone=${(r: {
      topics: TopicSummary[];
    }) => {
      topics.value = r.topics;
    }} />
    <ul class="rows">
      ${topics.value.map(
        (t) => html`<li data-topic=${t.topic}><strong>${t.topic}</strong> <small>last #${t.lastSeq}</small>
          <small data-subscribed=${t.subscribed}>${t.subscribed ? 'subscribed' : 'not subscribed'}</small>
          <${CommandButton} cmd="subscribe" args=${[groupId, t.topic]} label="Subscribe" onDone=${reload} />
          <${CommandButton} cmd="unsubscribe" args=${[groupId, t.topic]} label="Unsubscribe" onDone=${reload} />
          <${CommandButton} cmd="fetch_messages" args=${[groupId, t.topic]} label="Fetch retained"
            onDone=${(p: MessagePage) => {
              fetched.value = p;
            }} />
        </li>`,
      )}
    </ul>
    <div class="cards">
      <div class="card"><h3>Create a topic</h3>
        <${CommandForm} cmd="create_topic" submit="Create" prefix=${[groupId]}
          fields=${[{ name: 'topic', label: 'Topic' }]} clear=${['topic']} onDone=${reload} /></div>
      <div class="card"><h3>Publish</h3>
        <${CommandForm} cmd="publish" submit="Publish" prefix=${[groupId]}
          fields=${[
            { name: 'topic', label: 'Topic' },
            { name: 'message', label: 'Message' },
          ]} clear=${['message']} /></div>
    </div>
    ${
      fetched.value === null
        ? null
        : html`<h3>Retained in ${fetched.value.topic}</h3><ul class="rows">${fetched.value.messages.map(
            (m) => html`<li><strong>${m.sender}</strong> #${m.seq}: ${m.body}</li>`,
          )}</ul>`
    }
    <h3>Live feed</h3>
    <ul class="rows topic-feed" aria-live="polite">
      ${topicFeed.value
        .filter((m) => m.groupId === groupId)
        .map(
          (m) =>
            html`<li data-topic-message=${m.messageId}><strong>${m.sender}</strong> → ${m.topic}: ${m.body}</li>`,
        )}
    </ul>
  </section>`;
}
