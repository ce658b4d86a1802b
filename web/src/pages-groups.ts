import { useSignal } from '@preact/signals';
import { useEffect } from 'preact/hooks';
import type { JoinRequest, Member } from '../../src/protocol/api.js';
import { html } from './html.js';
import { currentGroup, groups, groupsChanged, status } from './state.js';
import { CommandButton, CommandForm, load } from './widgets.js';

export function loadGroups(): void {
  load('list_groups', [], (r) => (groups.value = r.groups));
}

/** The open group: its members and (for its owner) the join requests. */
function GroupDetail({ groupId, owner }: { groupId: string; owner: boolean }) {
  const members = useSignal<Member[]>([]);
  const requests = useSignal<JoinRequest[]>([]);
  const reload = () => {
    load('list_members', [groupId], (r) => (members.value = r.members));
    if (owner) load('list_requests', [groupId], (r) => (requests.value = r.requests));
  };
  useEffect(reload, [groupId, owner, groupsChanged.value]);
  const after = () => {
    reload();
    loadGroups();
  };
  return html`<div class="card" data-group=${groupId}>
    <h3>${groupId}</h3>
    <h4>Members <${CommandButton} cmd="list_members" args=${[groupId]} label="Refresh"
      onDone=${(r: { members: Member[] }) => {
        members.value = r.members;
      }} /></h4>
    <ul class="rows">
      ${members.value.map(
        (m) => html`<li><span>${m.userId}</span> <small>${m.role}</small>
          ${
            owner && m.role !== 'owner'
              ? html`<${CommandButton} cmd="remove_member" args=${[groupId, m.userId]} label="Remove" onDone=${after} />`
              : null
          }</li>`,
      )}
    </ul>
    <h4>Join requests <${CommandButton} cmd="list_requests" args=${[groupId]} label="Refresh"
      onDone=${(r: { requests: JoinRequest[] }) => {
        requests.value = r.requests;
      }} /></h4>
    ${requests.value.length === 0 ? html`<p class="muted">none pending</p>` : null}
    <ul class="rows">
      ${requests.value.map(
        (r) => html`<li data-request=${r.userId}><span>${r.userId}</span>
          <${CommandButton} cmd="accept_request" args=${[groupId, r.userId]} label="Accept" onDone=${after} />
          <${CommandButton} cmd="decline_request" args=${[groupId, r.userId]} label="Decline" onDone=${after} /></li>`,
      )}
    </ul>
  </div>`;
}

export function GroupsPage() {
  useEffect(loadGroups, [groupsChanged.value]);
  const open = groups.value.find((g) => g.groupId === currentGroup.value);
  return html`<section aria-labelledby="groups-h">
    <h2 id="groups-h">Groups</h2>
    <${CommandButton} cmd="list_groups" args=${[]} label="Refresh" onDone=${(r: {
      groups: typeof groups.value;
    }) => {
      groups.value = r.groups;
    }} />
    <table>
      <thead><tr><th>Group</th><th>Owner</th><th>Members</th><th>Standing</th><th></th></tr></thead>
      <tbody>
        ${groups.value.map(
          (g) => html`<tr data-group-row=${g.groupId}>
            <td><button type="button" class="link" onClick=${() => {
              currentGroup.value = g.groupId;
            }}>${g.groupId}</button></td>
            <td>${g.owner}</td><td>${g.memberCount}</td><td data-standing>${g.standing}</td>
            <td>
              ${
                g.standing === 'member'
                  ? html`<${CommandButton} cmd="leave_group" args=${[g.groupId]} label="Leave" onDone=${loadGroups} />`
                  : html`<${CommandButton} cmd="join_group" args=${[g.groupId]} label="Join" onDone=${loadGroups} />`
              }
            </td>
          </tr>`,
        )}
      </tbody>
    </table>
    <div class="cards">
      <div class="card">
        <h3>Create a group</h3>
        <${CommandForm} cmd="create_group" submit="Create" fields=${[{ name: 'group', label: 'Group id' }]}
          clear=${['group']} onDone=${(g: { groupId: string }) => {
            currentGroup.value = g.groupId;
            loadGroups();
          }} />
      </div>
      <div class="card">
        <h3>Join by name</h3>
        <${CommandForm} cmd="join_group" submit="Ask to join" fields=${[{ name: 'group', label: 'Group id' }]}
          clear=${['group']} onDone=${loadGroups} />
      </div>
    </div>
    ${open === undefined ? null : html`<${GroupDetail} groupId=${open.groupId} owner=${open.owner === status.value?.userId} />`}
  </section>`;
}
