import { device, el } from '../api.js';
import { writable } from './library.js';

export async function render(view) {
  const status = el('p', { class: 'muted', role: 'status', id: 'groups-status' });
  const table = el('table', { id: 'groups' });
  const id = el('input', { type: 'text', id: 'group-id', maxlength: 32, required: true });
  const name = el('input', { type: 'text', id: 'group-name', maxlength: 128, required: true });
  const score = el('input', { type: 'number', id: 'group-score', min: 0, max: 100, value: 80, required: true });
  const form = el('form', { class: 'card', id: 'group-form' }, el('h2', {}, 'New group'),
    el('div', { class: 'row' },
      el('div', {}, el('label', { for: 'group-id' }, 'Group id'), id),
      el('div', {}, el('label', { for: 'group-name' }, 'Name'), name),
      el('div', {}, el('label', { for: 'group-score' }, 'Score (0–100)'), score),
      el('button', { type: 'submit' }, 'Create')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      await device('POST', '/api/faceGroups', { groupId: id.value, groupName: name.value, groupScore: Number(score.value) });
      status.textContent = `Group ${id.value} created.`;
      form.reset();
      await load();
    } catch (error) { status.textContent = `Not created: ${error.message}`; }
  });

  function row(group) {
    const cell = el('td', {}, String(group.groupScore));
    const tr = el('tr', { dataset: { group: group.groupId } }, el('td', {}, group.groupId), el('td', {}, group.groupName), cell, el('td', {}, String(group.groupFaces)));
    if (writable()) {
      const input = el('input', { type: 'number', min: 0, max: 100, value: group.groupScore, 'aria-label': `Score of ${group.groupName}`, class: 'score' });
      const save = el('button', { type: 'button', class: 'secondary save-score' }, 'Set score');
      save.addEventListener('click', async () => {
        try {
          await device('PUT', '/api/faceGroups', { groupId: group.groupId, groupName: group.groupName, groupScore: Number(input.value) });
          status.textContent = `Score of ${group.groupId} is now ${input.value}.`;
          await load();
        } catch (error) { status.textContent = `Not changed: ${error.message}`; }
      });
      cell.replaceChildren(el('div', { class: 'row' }, input, save));
      const actions = el('td', { class: 'actions' });
      if (group.groupId !== 'default') {
        const del = el('button', { type: 'button', class: 'danger delete' }, 'Delete');
        del.addEventListener('click', async () => {
          if (del.dataset.armed !== '1') { del.dataset.armed = '1'; del.textContent = 'Really delete (faces stay)?'; return; }
          try { await device('DELETE', `/api/faceGroups/${encodeURIComponent(group.groupId)}`, { deleteAllFace: 1 }); await load(); }
          catch (error) { status.textContent = `Not deleted: ${error.message}`; }
        });
        actions.append(del);
      }
      tr.append(actions);
    }
    return tr;
  }

  async function load() {
    const groups = (await device('GET', '/api/faceGroups')).faceGroupList;
    table.replaceChildren(
      el('thead', {}, el('tr', {}, el('th', {}, 'Id'), el('th', {}, 'Name'), el('th', {}, 'Score'), el('th', {}, 'Faces'), writable() ? el('th', {}, '') : '')),
      el('tbody', {}, groups.map(row)));
  }

  view.replaceChildren(el('h1', {}, 'Groups'), writable() ? form : '', el('section', { class: 'card' }, status, el('div', { class: 'table-wrap' }, table),
    el('p', { class: 'hint' }, 'Bind faces to a group from the Library page. A search passes a face when its score reaches the group\'s score.')));
  await load();
}
