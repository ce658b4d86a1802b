import { useSignal } from '@preact/signals';
import { useEffect } from 'preact/hooks';
import type { MessagePage, TopicSummary } from '../../src/protocol/api.js';
import type { SendAnswer } from '../../src/protocol/control.js';
import { formatTime } from './format.js';
import { html } from './html.js';
import { GroupPicker } from './pages-files.js';
import { currentGroup, inbox, type SentEntry, sent, setMark, topicFeed } from './state.js';
import { CommandButton, CommandForm, load } from './widgets.js';

function remember(to: string, body: string, answer: SendAnswer): void {
  sent.value = [
    {
      id: answer.id,
      streamId: answer.streamId,
      seq: answer.state === 'sent' ? answer.seq : Number.MAX_SAFE_INTEGER,
      to,
      body,
      mark: answer.state,
    },
    ...sent.value,
  ];
}

function SentRow({ e }: { e: SentEntry }) {
  return html`<li data-sent=${e.id ?? 'pending'} data-mark=${e.mark}>
    <span class="to">to ${e.to}</span> <span class="body">${e.body}</span>
    <span class=${`mark mark-${e.mark}`} aria-label=${`state: ${e.mark}`}>${e.mark}</span>
    ${
      e.id === null
        ? null
        : html`<${CommandButton} cmd="message_status" args=${[e.id]} label="Check"
          onDone=${(s: { state: 'sent' | 'delivered' | 'read' }) => setMark(e.id!, s.state)} />`
    }
  </li>`;
}

/** Messages: the inbox, compose (direct and group), and what this page sent with its marks. */
export function MessagesPage() {
  useEffect(() => load('show_messages', [], (r) => (inbox.value = r.messages)), []);
  const to = useSignal('');
  const body = useSignal('');
  return html`<section aria-labelledby="messages-h">
    <h2 id="messages-h">Messages</h2>
    <div class="cards">
      <div class="card">
        <h3>Direct message</h3>
        <${CommandForm} cmd="send_msg" submit="Send"
          fields=${[{ name: 'user', label: 'To user' }, { name: 'message', label: 'Message' }]}
          clear=${['message']}
          onCapture=${(v: Record<string, string>) => {
            to.value = v.user ?? '';
            body.value = v.message ?? '';
          }}
          onDone=${(a: SendAnswer) => remember(to.value, body.value, a)} />
      </div>
      <div class="card">
        <h3>Group message</h3>
        <${CommandForm} cmd="send_group_msg" submit="Send to group"
          fields=${[
            { name: 'group', label: 'Group', value: currentGroup.value ?? '' },
            { name: 'message', label: 'Message' },
          ]}
          clear=${['message']}
          onCapture=${(v: Record<string, string>) => {
            to.value = `group ${v.group ?? ''}`;
            body.value = v.message ?? '';
          }}
          onDone=${(a: SendAnswer) => remember(to.value, body.value, a)} />
      </div>
    </div>
    <h3>Sent from this page</h3>
    <ul class="rows sent" aria-live="polite">${sent.value.map((e) => html`<${SentRow} e=${e} />`)}</ul>
    <h3>Inbox</h3>
    <${CommandForm} cmd="show_messages" submit="Show"
      fields=${[
        { name: 'user', label: 'From user', optional: true },
        { name: 'group', label: 'Group', optional: true, option: '--group' },
      ]}
      onDone=${(r: { messages: typeof inbox.value }) => {
        inbox.value = r.messages;
      }} />
    <ul class="rows inbox">
      ${inbox.value.map(
        (m) => html`<li data-message=${m.messageId}>
          <strong>${m.sender}</strong>${m.groupId === null ? '' : ` in ${m.groupId}${m.topic === null ? '' : `/${m.topic}`}`}:
          <span class="body">${m.body}</span> <small>${formatTime(m.sentAt)}</small>
        </li>`,
      )}
    </ul>
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
