import { call, el } from '../api.js';

export async function render(view) {
  const file = el('input', { type: 'file', id: 'task-file', accept: 'video/*', required: true });
  const method = el('select', { id: 'task-method' }, ['gaussian', 'pixelate', 'solid'].map((m) => el('option', { value: m }, m)));
  const progress = el('progress', { id: 'task-progress', max: 1, value: 0, hidden: true });
  const status = el('p', { id: 'task-status', role: 'status' });
  const result = el('div', { id: 'task-result' });
  let timer = null;
  const form = el('form', { class: 'card' }, el('h2', {}, 'Blur a video'),
    el('div', { class: 'row' },
      el('div', {}, el('label', { for: 'task-file' }, 'Video file'), file),
      el('div', {}, el('label', { for: 'task-method' }, 'Method'), method),
      el('button', { type: 'submit' }, 'Upload')),
    progress, status, result);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (!file.files.length) return;
    const body = new FormData();
    body.append('video', file.files[0]);
    body.append('method', method.value);
    status.textContent = 'Uploading…';
    result.replaceChildren();
    const r = await call('POST', '/api/v1/tasks/blur-video', body);
    if (r.status !== 202) { status.textContent = `Refused: ${r.body?.error || r.status}`; return; }
    progress.hidden = false;
    const url = r.body.status_url;
    const poll = async () => {
      const s = await call('GET', url);
      if (s.status !== 200) { status.textContent = `Task lost: ${s.body?.error || s.status}`; clearInterval(timer); return; }
      const t = s.body;
      progress.value = t.progress ?? 0;
      status.textContent = `${t.status}${t.frames_done !== undefined ? ` · ${t.frames_done}${t.frames_total ? ` / ${t.frames_total}` : ''} frames` : ''}${t.error ? ` · ${t.error}` : ''}`;
      if (t.status === 'done') {
        clearInterval(timer);
        result.replaceChildren(
          el('video', { controls: true, class: 'stream', src: t.result_url, id: 'task-video' }),
          el('p', {}, el('a', { href: t.result_url, download: '', id: 'task-download' }, 'Download the blurred video')));
      } else if (t.status === 'failed') clearInterval(timer);
    };
    timer = setInterval(poll, 1000);
    await poll();
  });
  view.replaceChildren(el('h1', {}, 'Tasks'), form);
  return () => clearInterval(timer);
}
