import { device, el, readAsDataURL, session } from '../api.js';

const PAGE = 50;

function reasonOf(error) {
  return error.message.replace(/^INVALID_PARAMETER:/, '');
}

export async function render(view) {
  let offset = 0;
  let filter = '';
  let groups = [];
  const status = el('p', { class: 'muted', role: 'status', id: 'library-status' });
  const table = el('table', { id: 'faces' });
  const pager = el('div', { class: 'pager' });
  const results = el('ul', { class: 'results', id: 'enrol-results', 'aria-live': 'polite' });

  const files = el('input', { type: 'file', id: 'enrol-files', accept: 'image/jpeg,image/png,image/bmp', multiple: true });
  const name = el('input', { type: 'text', id: 'enrol-name', maxlength: 128 });
  const description = el('input', { type: 'text', id: 'enrol-description', maxlength: 255 });
  const enrolForm = el('form', { class: 'card', id: 'enrol-form' },
    el('h2', {}, 'Enrol'),
    el('div', { class: 'row' },
      el('div', {}, el('label', { for: 'enrol-files' }, 'Photos (several of one person: one face each)'), files),
      el('div', {}, el('label', { for: 'enrol-name' }, 'Name'), name),
      el('div', {}, el('label', { for: 'enrol-description' }, 'Description'), description),
      el('button', { type: 'submit', id: 'enrol-submit' }, 'Enrol'),
      session.features?.camera ? el('button', { type: 'button', class: 'secondary', id: 'enrol-camera' }, 'Enrol from camera') : ''),
    results);
  enrolForm.addEventListener('submit', async (event) => {
    event.preventDefault();
    results.replaceChildren();
    for (const file of files.files) {
      const line = el('li', {}, `${file.name}: uploading…`);
      results.append(line);
      try {
        const image = await readAsDataURL(file);
        const data = await device('POST', '/api/faces', { image, name: name.value, description: description.value });
        line.className = 'ok';
        line.textContent = `${file.name}: enrolled (faceToken ${data.faceToken})`;
      } catch (error) {
        line.className = 'error';
        line.textContent = `${file.name}: refused — ${reasonOf(error)}`;
      }
    }
    files.value = '';
    await load();
  });

  enrolForm.querySelector('#enrol-camera')?.addEventListener('click', async () => {
    // The device takes its newest camera frame itself: no picture of the person crosses the network.
    const line = el('li', {}, 'camera: enrolling…');
    results.replaceChildren(line);
    try {
      const data = await device('POST', '/api/faces/camera', { name: name.value, description: description.value });
      line.className = 'ok';
      line.textContent = `camera: enrolled (faceToken ${data.faceToken})`;
    } catch (error) {
      line.className = 'error';
      line.textContent = `camera: refused — ${reasonOf(error)}`;
    }
    await load();
  });

  const search = el('input', { type: 'search', id: 'face-search', placeholder: 'Search by name', 'aria-label': 'Search by name' });
  search.addEventListener('input', () => { filter = search.value.trim(); offset = 0; load(); });

  function row(face) {
    const nameCell = el('td', {}, face.name);
    const descCell = el('td', { class: 'optional' }, face.description);
    const actions = el('td', { class: 'actions' });
    const tr = el('tr', { dataset: { token: face.faceToken } },
      el('td', {}, el('img', { class: 'thumb', alt: `face of ${face.name || 'unnamed'}`, loading: 'lazy', src: `/api/faces/faceToken/${encodeURIComponent(face.faceToken)}/crop.jpg` })),
      nameCell, descCell, el('td', { class: 'optional muted' }, face.faceToken), actions);
    const editing = el('div', { class: 'row', hidden: true });
    const newName = el('input', { type: 'text', value: face.name, 'aria-label': 'New name', maxlength: 128 });
    const newDesc = el('input', { type: 'text', value: face.description, 'aria-label': 'New description', maxlength: 255 });
    const save = el('button', { type: 'button', class: 'save' }, 'Save');
    save.addEventListener('click', async () => {
      try { await device('PATCH', `/api/faces/faceToken/${encodeURIComponent(face.faceToken)}`, { name: newName.value, description: newDesc.value }); await load(); }
      catch (error) { status.textContent = `Not saved: ${reasonOf(error)}`; }
    });
    editing.append(newName, newDesc, save);
    const groupSelect = el('select', { 'aria-label': 'Group to bind' }, groups.filter((g) => g.groupId !== 'default').map((g) => el('option', { value: g.groupId }, g.groupName)));
    const bindButton = el('button', { type: 'button', class: 'secondary bind' }, 'Add to group');
    bindButton.addEventListener('click', async () => {
      if (!groupSelect.value) return;
      try {
        const data = await device('POST', `/api/faceGroups/binding/${encodeURIComponent(face.faceToken)}`, { faceGroupList: [groupSelect.value] });
        status.textContent = data.failCnt ? `Not bound: ${data.failInfo.map((f) => f.errorMsg).join(', ')}` : `Bound to ${groupSelect.value}.`;
      } catch (error) { status.textContent = `Not bound: ${reasonOf(error)}`; }
    });
    if (writable()) {
      const edit = el('button', { type: 'button', class: 'secondary edit' }, 'Edit');
      edit.addEventListener('click', () => { editing.hidden = !editing.hidden; });
      const del = el('button', { type: 'button', class: 'danger delete' }, 'Delete');
      del.addEventListener('click', async () => {
        if (del.dataset.armed !== '1') { del.dataset.armed = '1'; del.textContent = 'Really delete?'; return; }
        try { await device('DELETE', `/api/faces/${encodeURIComponent(face.faceToken)}`); await load(); }
        catch (error) { status.textContent = `Not deleted: ${reasonOf(error)}`; }
      });
      actions.append(edit, ' ', del, ' ', groups.length > 1 ? groupSelect : '', ' ', groups.length > 1 ? bindButton : '');
      nameCell.append(editing);
    }
    return tr;
  }

  async function load() {
    const query = new URLSearchParams({ pageOffset: offset, pageSize: PAGE });
    if (filter) query.set('name', filter);
    try {
      groups = (await device('GET', '/api/faceGroups')).faceGroupList;
      const data = await device('GET', `/api/faces?${query}`);
      table.replaceChildren(
        el('thead', {}, el('tr', {}, el('th', {}, 'Face'), el('th', {}, 'Name'), el('th', { class: 'optional' }, 'Description'), el('th', { class: 'optional' }, 'faceToken'), el('th', {}, ''))),
        el('tbody', {}, data.face.map(row)));
      status.textContent = `${data.totalFaces} face${data.totalFaces === 1 ? '' : 's'}${filter ? ` named like “${filter}”` : ''}.`;
      const prev = el('button', { type: 'button', class: 'secondary', disabled: offset === 0 }, 'Previous');
      prev.addEventListener('click', () => { offset = Math.max(0, offset - PAGE); load(); });
      const next = el('button', { type: 'button', class: 'secondary', disabled: offset + PAGE >= data.totalFaces }, 'Next');
      next.addEventListener('click', () => { offset += PAGE; load(); });
      pager.replaceChildren(prev, el('span', { class: 'muted' }, `${data.totalFaces ? offset + 1 : 0}–${Math.min(offset + PAGE, data.totalFaces)} of ${data.totalFaces}`), next);
    } catch (error) {
      status.textContent = `The library could not be read: ${reasonOf(error)}`;
    }
  }

  view.replaceChildren(el('h1', {}, 'Library'), writable() ? enrolForm : '', el('section', { class: 'card' }, search, status, el('div', { class: 'table-wrap' }, table), pager));
  await load();
}

// Buttons that change the library are shown only to tokens that may change it; the server refuses
// the rest anyway.
export function writable() {
  const scopes = session?.scopes;
  return !Array.isArray(scopes) || scopes.includes('admin') || scopes.includes('library');
}
