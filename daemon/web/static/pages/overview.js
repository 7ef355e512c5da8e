import { call, device, el, formatTime, session } from '../api.js';

function rows(object, prefix = '') {
  const out = [];
  for (const [key, value] of Object.entries(object || {})) {
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) out.push(...rows(value, `${prefix}${key}.`));
    else out.push(el('tr', {}, el('th', { scope: 'row' }, prefix + key), el('td', {}, Array.isArray(value) ? value.join(', ') : String(value))));
  }
  return out;
}

export async function render(view) {
  const { body: health } = await call('GET', '/health');
  const status = health?.status || 'unknown';
  const camera = health?.camera || {};
  const library = health?.library || {};
  const warnings = [];
  if (status !== 'ok') warnings.push(`Daemon status: ${status}${health?.error ? ` — ${health.error}` : ''}`);
  if (camera.last_camera_error) warnings.push(`Camera: ${camera.last_camera_error}`);

  const cards = el('div', { class: 'grid' },
    el('section', { class: 'card' }, el('h2', {}, 'Daemon'),
      el('p', {}, el('strong', { id: 'status' }, status), ` · up ${Math.round(health?.uptime_s || 0)} s`),
      el('p', { class: 'muted' }, `detector ${health?.model || '?'}`)),
    el('section', { class: 'card' }, el('h2', {}, 'Library'),
      el('p', {}, el('strong', { id: 'library-faces' }, String(library.indexed_faces ?? '–')), library.indexed_faces === 1 ? ' face' : ' faces'),
      el('p', { class: 'muted', id: 'library-groups' }, '… groups')),
    el('section', { class: 'card' }, el('h2', {}, 'Camera'),
      el('p', {}, el('strong', {}, camera.state || 'disabled')),
      el('p', { class: 'muted' }, camera.processed_fps !== undefined ? `${camera.processed_fps} fps published` : 'no camera configured')),
  );
  const warningBox = el('section', { class: 'card' }, el('h2', {}, 'Warnings'), el('p', { class: 'muted' }, 'Checking…'));
  const recent = el('section', { class: 'card' }, el('h2', {}, 'Recent events'), el('p', { class: 'muted' }, 'Loading…'));
  const details = el('details', { class: 'card' }, el('summary', {}, 'Everything /health reports'), el('table', {}, el('tbody', {}, rows(health))));
  view.replaceChildren(el('h1', {}, 'Overview'), cards, warningBox, recent, details);
  // The same checks as `facegate doctor` (run on the device, cached a minute), filled in when they answer.
  const admin = session.scopes?.includes('admin');
  const doctor = admin ? await call('GET', '/api/admin/doctor') : { status: 403, body: null };
  for (const c of doctor.body?.checks || []) {
    if (c.status === 'fail' || c.status === 'warn') warnings.push(`${c.name}: ${c.detail}${c.fix ? ` — fix: ${c.fix}` : ''}`);
  }
  if (!admin) warnings.push('The device checks (facegate doctor) need an admin token.');
  warningBox.replaceChildren(el('h2', {}, 'Warnings'), warnings.length
    ? el('ul', { id: 'warnings' }, warnings.map((w) => el('li', { class: 'error' }, w)))
    : el('p', { class: 'ok', id: 'warnings' }, 'None.'));
  try {
    const groups = (await device('GET', '/api/faceGroups')).faceGroupList;
    document.getElementById('library-groups').textContent = `${groups.length} group${groups.length === 1 ? '' : 's'}`;
  } catch { document.getElementById('library-groups').textContent = ''; }

  if (!session.features?.events) {
    recent.replaceChildren(el('h2', {}, 'Recent events'), el('p', { class: 'muted' }, 'This device has no door pipeline.'));
    return;
  }
  const events = await call('GET', '/api/events?pageSize=5');
  const list = events.status === 200 && events.body?.data?.events;
  recent.replaceChildren(el('h2', {}, 'Recent events'), list && list.length
    ? el('ul', { class: 'events' }, list.map((e) => el('li', {}, el('span', { class: `badge ${e.decision}` }, e.decision), e.name || e.faceToken || 'unknown face', el('span', { class: 'muted' }, formatTime(e.time)))))
    : el('p', { class: 'muted' }, events.status === 404 ? 'This device has no door pipeline.' : 'No events yet.'));
}
