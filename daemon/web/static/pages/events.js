import { call, el, formatTime, session } from '../api.js';

function item(event) {
  const snapshot = event.snapshot
    ? el('img', { class: 'thumb', alt: 'face at the door', loading: 'lazy', src: `/api/events/${event.id}/snapshot` })
    : el('span', { class: 'thumb' });
  return el('li', { dataset: { id: event.id } }, snapshot,
    el('span', { class: `badge ${event.decision}` }, event.decision),
    el('span', {}, event.name || event.faceToken || 'unknown face'),
    event.score !== null && event.score !== undefined ? el('span', { class: 'muted' }, `score ${Number(event.score).toFixed(1)}`) : '',
    el('span', { class: 'muted' }, event.reason || ''),
    el('span', { class: 'muted' }, formatTime(event.time)));
}

export async function render(view) {
  const decision = el('select', { id: 'event-decision', 'aria-label': 'Decision' },
    ['', 'granted', 'denied', 'unknown'].map((d) => el('option', { value: d }, d || 'all decisions')));
  const list = el('ul', { class: 'events', id: 'events', 'aria-live': 'polite' });
  const status = el('p', { class: 'muted', role: 'status' });
  view.replaceChildren(el('h1', {}, 'Events'), el('div', { class: 'card' }, el('label', { for: 'event-decision' }, 'Show'), decision, status, list));
  if (!session.features?.events) { status.textContent = 'This device has no door pipeline.'; return undefined; }

  async function load() {
    const query = new URLSearchParams({ pageSize: 50 });
    if (decision.value) query.set('decision', decision.value);
    const r = await call('GET', `/api/events?${query}`);
    if (r.status === 404) { status.textContent = 'This device has no door pipeline.'; return false; }
    if (r.status !== 200 || r.body?.code !== 0) { status.textContent = `Events could not be read: ${r.body?.msg || r.status}`; return false; }
    list.replaceChildren(...r.body.data.events.map(item));
    status.textContent = `${r.body.data.total ?? r.body.data.events.length} events.`;
    return true;
  }
  decision.addEventListener('change', load);
  if (!(await load())) return undefined;
  // Live: new events arrive over Server-Sent Events (the cookie authenticates the stream).
  const source = new EventSource('/api/events/stream');
  source.addEventListener('event', (message) => {
    const event = JSON.parse(message.data);
    if (decision.value && event.decision !== decision.value) return;
    list.prepend(item(event));
  });
  source.onmessage = (message) => {
    try { const event = JSON.parse(message.data); if (event && event.decision && (!decision.value || event.decision === decision.value)) list.prepend(item(event)); } catch { /* heartbeat */ }
  };
  return () => source.close();
}
