// The router: `#/<page>/<args>` picks a page module (one per page, loaded on first use); each
// exports `render(main, args, context)` and may return a cleanup function, called on leaving.
import { currentUser, onSessionChange, signOut } from './api.js';
import { errorBox, flash, replace } from './dom.js';

const PAGES = {
  events: './pages/events.js',
  event: './pages/event.js',
  signin: './pages/signin.js',
  signup: './pages/signin.js',
  queue: './pages/queue.js',
  buy: './pages/buy.js',
  checkout: './pages/checkout.js',
  tickets: './pages/tickets.js',
  ticket: './pages/ticket.js',
  organizer: './pages/organizer.js',
  drop: './pages/drop.js',
  verify: './pages/verify.js',
};

let cleanup = null;
let pendingFlash = '';  // a message for the next page (shown once it is routed)
const main = document.getElementById('main');

function showUser(user) {
  document.getElementById('nav-signin').hidden = Boolean(user);
  document.getElementById('nav-signout').hidden = !user;
  document.getElementById('nav-organizer').hidden = !(user && (user.role === 'organizer' || user.role === 'admin'));
}

export function go(hash) {
  if (location.hash === hash) route();
  else location.hash = hash;
}

async function route() {
  const path = location.hash.replace(/^#\/?/, '').split('?')[0] || 'events';
  const [name, ...args] = path.split('/').map(decodeURIComponent);
  if (cleanup) {
    try { cleanup(); } catch { /* a page's cleanup failing must not block the next page */ }
    cleanup = null;
  }
  flash(pendingFlash);
  pendingFlash = '';
  const module = PAGES[name] || PAGES.events;
  try {
    const page = await import(module);
    const user = await currentUser();
    showUser(user);
    document.title = 'booking-rush';
    const result = await page.render(main, args, { user, page: name, go });
    if (typeof result === 'function') cleanup = result;
    main.focus({ preventScroll: true });
  } catch (err) {
    replace(main, errorBox(err && err.message ? err.message : 'This page could not be shown.'));
  }
}

document.getElementById('nav-signout').addEventListener('click', async () => {
  let problem = '';
  try {
    await signOut();
  } catch (err) {
    problem = `Signed out in this tab, but the service could not be told (${err.message}); the sign-in ends when its refresh token expires.`;
  }
  pendingFlash = problem;
  go('#/signin');
});
onSessionChange(showUser);
window.addEventListener('hashchange', route);
route();
