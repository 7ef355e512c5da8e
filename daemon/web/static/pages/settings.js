import { call, el, formatTime, session } from '../api.js';

export async function render(view) {
  if (!session.scopes?.includes('admin')) {
    view.replaceChildren(el('h1', {}, 'Settings'), el('p', { class: 'muted', id: 'config' }, 'Only an admin token may read the configuration, the tokens and the audit log.'));
    return;
  }
  const r = await call('GET', '/api/config');
  const content = r.status === 200
    ? el('pre', { id: 'config' }, JSON.stringify(r.body, null, 2))
    : el('p', { class: 'muted', id: 'config' }, r.status === 403 ? 'Only an admin token may read the configuration.' : `Not available (${r.status}).`);
  const sections = [el('h1', {}, 'Settings'),
    el('section', { class: 'card' }, el('h2', {}, 'Effective configuration'), el('p', { class: 'hint' }, 'Secrets are masked. Change settings in the configuration file (or, for a door, its settings API).'), content)];
  const tokens = await call('GET', '/api/admin/tokens');
  if (tokens.status === 200) {
    sections.push(el('section', { class: 'card' }, el('h2', {}, 'Tokens'),
      el('div', { class: 'table-wrap' }, el('table', { id: 'tokens' },
        el('thead', {}, el('tr', {}, el('th', {}, 'Name'), el('th', {}, 'Scopes'), el('th', {}, 'Created'))),
        el('tbody', {}, tokens.body.tokens.map((t) => el('tr', {}, el('td', {}, t.name), el('td', {}, t.scopes.join(', ')), el('td', {}, formatTime(t.created))))))),
      el('p', { class: 'hint' }, 'Add or revoke tokens on the device: facegate token add NAME --scope …, facegate token revoke NAME (then restart the service).')));
  }
  const audit = session.features?.audit ? await call('GET', '/api/admin/audit?limit=50') : null;
  if (audit?.status === 200) {
    const rows = audit.body.records || audit.body.entries || [];
    const row = (a) => el('tr', {}, el('td', {}, formatTime(a.time)), el('td', {}, a.principal),
      el('td', {}, a.action), el('td', {}, a.target ?? ''));
    const table = el('table', { id: 'audit' },
      el('thead', {}, el('tr', {}, el('th', {}, 'Time'), el('th', {}, 'Who'), el('th', {}, 'What'), el('th', {}, 'Target'))),
      el('tbody', {}, rows.map(row)));
    sections.push(el('section', { class: 'card' }, el('h2', {}, 'Audit log'), el('div', { class: 'table-wrap' }, table)));
  }
  view.replaceChildren(...sections);
}
