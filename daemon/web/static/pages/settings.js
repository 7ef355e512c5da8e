import { call, el } from '../api.js';

export async function render(view) {
  const r = await call('GET', '/api/config');
  const content = r.status === 200
    ? el('pre', { id: 'config' }, JSON.stringify(r.body, null, 2))
    : el('p', { class: 'muted', id: 'config' }, r.status === 403 ? 'Only an admin token may read the configuration.' : `Not available (${r.status}).`);
  view.replaceChildren(el('h1', {}, 'Settings'),
    el('section', { class: 'card' }, el('h2', {}, 'Effective configuration'), el('p', { class: 'hint' }, 'Secrets are masked. Change settings in the configuration file (or, for a door, its settings API).'), content));
}
