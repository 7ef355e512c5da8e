import { call, el, session } from '../api.js';

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
  return () => { clearInterval(timer); image.src = ''; };
}
