// The page shell: session, navigation by location hash, one module per page.
import { el, loadSession, signOut } from './api.js';

const pages = {
  overview: () => import('./pages/overview.js'),
  library: () => import('./pages/library.js'),
  groups: () => import('./pages/groups.js'),
  live: () => import('./pages/live.js'),
  events: () => import('./pages/events.js'),
  tasks: () => import('./pages/tasks.js'),
  settings: () => import('./pages/settings.js'),
};

let leave = null; // the current page's clean-up (closes streams and event sources)

async function show() {
  const name = (location.hash.replace(/^#\/?/, '') || 'overview').split('?')[0];
  const load = pages[name] || pages.overview;
  for (const link of document.querySelectorAll('header nav a')) {
    if (link.getAttribute('href') === `#/${name}`) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (leave) { leave(); leave = null; }
  const view = document.getElementById('view');
  view.replaceChildren(el('p', {}, 'Loading…'));
  try {
    const page = await load();
    const result = await page.render(view);
    if (typeof result === 'function') leave = result;
  } catch (error) {
    view.replaceChildren(el('p', { class: 'error', role: 'alert' }, `This page could not be shown: ${error.message}`));
  }
  document.title = `Facegate — ${name}`;
  view.focus({ preventScroll: true });
}

async function start() {
  const session = await loadSession();
  document.getElementById('principal').textContent = session.principal;
  document.getElementById('signout').addEventListener('click', signOut);
  window.addEventListener('hashchange', show);
  await show();
}

start();
