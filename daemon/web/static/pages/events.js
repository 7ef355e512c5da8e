import { call, el, formatTime, session } from '../api.js';

export function item(event) {
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
  let total = 0;
  const showTotal = () => { status.textContent = `${total} event${total === 1 ? '' : 's'}.`; };
  view.replaceChildren(el('h1', {}, 'Events'), el('div', { class: 'card' }, el('label', { for: 'event-decision' }, 'Show'), decision, status, list));
  if (!session.features?.events) { status.textContent = 'This device has no door pipeline.'; return undefined; }

  async function load() {
    const query = new URLSearchParams({ pageSize: 50 });
    if (decision.value) query.set('decision', decision.value);
    const r = await call('GET', `/api/events?${query}`);
    if (r.status === 404) { status.textContent = 'This device has no door pipeline.'; return false; }
    if (r.status !== 200 || r.body?.code !== 0) { status.textContent = `Events could not be read: ${r.body?.msg || r.status}`; return false; }
    list.replaceChildren(...r.body.data.events.map(item));
    total = r.body.data.total ?? r.body.data.events.length;
    showTotal();
    return true;
  }
  decision.addEventListener('change', load);
  if (!(await load())) return undefined;
  // Live: new events arrive over Server-Sent Events (the cookie authenticates the stream; the browser
  // resumes with Last-Event-ID after a drop).
  const source = new EventSource('/api/events/stream');
  source.addEventListener('checkin', (message) => {
    const event = JSON.parse(message.data);
    if (decision.value && event.decision !== decision.value) return;
    if (list.querySelector(`li[data-id="${event.id}"]`)) return;
    list.prepend(item(event));
    total += 1;
    showTotal();
  });
  return () => source.close();
}
