// Calls to the device's own APIs with the session cookie (same origin) and the session's CSRF token.
let csrf = null;
export let session = null;

export async function loadSession() {
  const response = await fetch('/ui/session', { credentials: 'same-origin' });
  if (response.status === 401) {
    location.assign('/ui/login');
    throw new Error('not signed in');
  }
  session = await response.json();
  csrf = session.csrf;
  return session;
}

// JSON request; returns {status, body}. A 401 means the session ended: back to the sign-in page.
export async function call(method, path, body) {
  const headers = { 'X-CSRF-Token': csrf || '' };
  const init = { method, headers, credentials: 'same-origin' };
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  if (response.status === 401) {
    location.assign('/ui/login');
    throw new Error('session ended');
  }
  let parsed = null;
  const type = response.headers.get('Content-Type') || '';
  if (type.includes('json')) parsed = await response.json();
  return { status: response.status, body: parsed };
}

// The device API's envelope: {code, msg, data}; throws an Error carrying msg when code != 0.
export async function device(method, path, body) {
  const { status, body: answer } = await call(method, path, body);
  if (!answer || typeof answer.code !== 'number') throw new Error(`HTTP ${status}`);
  if (answer.code !== 0) throw new Error(answer.msg || `error ${answer.code}`);
  return answer.data;
}

export async function signOut() {
  await fetch('/ui/logout', { method: 'POST', headers: { 'X-CSRF-Token': csrf || '' }, credentials: 'same-origin' });
  location.assign('/ui/login');
}

// Build DOM with text only: children that are strings become text nodes, never HTML.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function readAsDataURL(file) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(file);
  });
}

export function formatTime(epochSeconds) {
  return new Date(epochSeconds * 1000).toLocaleString();
}
