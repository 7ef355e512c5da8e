import { call, el, session } from '../api.js';
import { item } from './events.js';

export async function render(view) {
  if (!session.features?.camera) {
    view.replaceChildren(el('h1', {}, 'Live'), el('p', { class: 'muted', id: 'live-status' }, 'No camera is configured on this device (camera.source).'));
    return undefined;
  }
  const info = await call('GET', '/api/stream/info');
  if (info.status !== 200) {
    view.replaceChildren(el('h1', {}, 'Live'), el('p', { class: 'muted', id: 'live-status' }, info.body?.error || 'No camera is configured on this device.'));
    return undefined;
  }
  // The session cookie authenticates the image request: no token in the page.
  const image = el('img', { class: 'stream', id: 'stream', alt: 'Blurred live camera stream', src: `/api/stream.mjpg?t=${Date.now()}` });
  const metrics = el('p', { class: 'muted', id: 'live-metrics' });
  const update = async () => {
    const r = await call('GET', '/api/stream/info');
    if (r.status === 200) metrics.textContent = `${r.body.state} · ${r.body.processed_fps} fps published · ${r.body.tracks} faces tracked · detector ${r.body.detector}`;
  };
  await update();
  const timer = setInterval(update, 2000);
  view.replaceChildren(el('h1', {}, 'Live'), el('p', { class: 'hint' }, 'Every face is blurred before a frame leaves the device.'), image, metrics);
  let source = null;
  if (session.features?.events) {
    // The door's decisions as they happen, beside the picture (the stream itself carries no boxes).
    const decisions = el('ul', { class: 'events', id: 'live-decisions', 'aria-live': 'polite' });
    view.append(el('section', { class: 'card' }, el('h2', {}, 'Door decisions'), decisions));
    source = new EventSource('/api/events/stream');
    source.addEventListener('checkin', (message) => {
      decisions.prepend(item(JSON.parse(message.data)));
      while (decisions.children.length > 5) decisions.lastChild.remove();
    });
  }
  return () => { clearInterval(timer); image.src = ''; if (source) source.close(); };
}
