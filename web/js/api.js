// The one API client: every call to /api/v1 goes through here (same origin only).
//
// Tokens: the access token lives in this module's memory only (never in storage, never in a
// URL), so a script that runs later on the page cannot read it from storage and a reload simply
// asks for a new one. The refresh token is in sessionStorage: it survives a reload of this tab
// but not the tab, and is not shared with other tabs (each tab rotates its own). It is rotated
// on every use; the access token is refreshed in the background before it expires. A strict CSP
// (no inline or foreign script) is what keeps other code from reading either.

const BASE = '/api/v1';
const REFRESH_KEY = 'booking-rush.refresh';

let accessToken = null;
let refreshTimer = null;
let refreshing = null;
let me = null;
const listeners = new Set();

export class ApiError extends Error {
  constructor(status, problem, retryAfter) {
    super(describeProblem(status, problem, retryAfter));
    this.status = status;
    this.code = problem?.code || (status === 0 ? 'network' : 'http_' + status);
    this.problem = problem || {};
    this.retryAfter = retryAfter;
  }
}

function describeProblem(status, problem, retryAfter) {
  if (status === 0) return 'The service cannot be reached. Check your connection and try again.';
  if (status === 429) {
    const wait = retryAfter ? `${retryAfter} second${retryAfter === 1 ? '' : 's'}` : 'a moment';
    return `Too many requests right now. Please try again in ${wait}.`;
  }
  if (!problem || typeof problem !== 'object') return `The service answered with an error (${status}).`;
  const detail = problem.detail && problem.detail !== problem.title ? `: ${problem.detail}` : '';
  let text = `${problem.title || 'Error'}${detail}`;
  if (Array.isArray(problem.errors) && problem.errors.length) {
    const fields = problem.errors
      .map((e) => [Array.isArray(e.loc) ? e.loc.filter((p) => p !== 'body').join('.') : e.field, e.msg || e.message]
        .filter(Boolean).join(': '))
      .filter(Boolean);
    if (fields.length) text += ` (${fields.join('; ')})`;
  }
  if (status === 503 && retryAfter) text += ` Try again in ${retryAfter} s.`;
  return text;
}

export function onSessionChange(listener) {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

function notify() {
  for (const listener of listeners) listener(me);
}

function storeTokens(pair) {
  accessToken = pair.access_token;
  sessionStorage.setItem(REFRESH_KEY, pair.refresh_token);
  clearTimeout(refreshTimer);
  const lifetime = Math.max(10, Number(pair.expires_in) || 900);
  refreshTimer = setTimeout(() => { refresh().catch(() => {}); }, lifetime * 800);
}

function clearTokens() {
  accessToken = null;
  me = null;
  clearTimeout(refreshTimer);
  sessionStorage.removeItem(REFRESH_KEY);
}

async function refresh() {
  if (refreshing) return refreshing;
  const token = sessionStorage.getItem(REFRESH_KEY);
  if (!token) return false;
  refreshing = (async () => {
    try {
      const pair = await request('POST', '/auth/refresh', { body: { refresh_token: token }, auth: false });
      storeTokens(pair);
      return true;
    } catch (err) {
      if (err.status === 401) {
        clearTokens();
        notify();
      }
      return false;
    } finally {
      refreshing = null;
    }
  })();
  return refreshing;
}

export async function bearer() {
  if (!accessToken) await refresh();
  return accessToken;
}

export async function request(method, path, { body, headers = {}, auth = true, retried = false } = {}) {
  const sent = { Accept: 'application/json, application/problem+json', ...headers };
  if (body !== undefined) sent['Content-Type'] = 'application/json';
  if (auth) {
    const token = await bearer();
    if (token) sent.Authorization = `Bearer ${token}`;
  }
  let response;
  try {
    response = await fetch(BASE + path, {
      method, headers: sent, body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit', cache: 'no-store',
    });
  } catch {
    throw new ApiError(0, null, null);
  }
  if (response.status === 401 && auth && !retried && sessionStorage.getItem(REFRESH_KEY)) {
    accessToken = null;
    if (await refresh()) return request(method, path, { body, headers, auth, retried: true });
  }
  if (response.status === 204) return null;
  const type = response.headers.get('content-type') || '';
  const data = type.includes('json') ? await response.json().catch(() => null) : await response.text();
  if (!response.ok) {
    const retryAfter = Number(response.headers.get('retry-after')) || null;
    throw new ApiError(response.status, typeof data === 'object' ? data : null, retryAfter);
  }
  return data;
}

export const get = (path, options) => request('GET', path, options);
export const post = (path, body, options = {}) => request('POST', path, { ...options, body });

export async function signIn(email, password) {
  const pair = await request('POST', '/auth/login', { body: { email, password }, auth: false });
  storeTokens(pair);
  return loadMe();
}

export async function signUp(email, password, name) {
  await request('POST', '/auth/register', { body: { email, password, name }, auth: false });
  return signIn(email, password);
}

// Ends the sign-in on the service too (POST /auth/logout revokes the refresh token and every
// token rotated from it), then forgets the tokens here. The tokens are forgotten even if the
// service cannot be told; the error says so.
export async function signOut() {
  const token = sessionStorage.getItem(REFRESH_KEY);
  clearTokens();
  notify();
  if (token) await request('POST', '/auth/logout', { body: { refresh_token: token }, auth: false });
}

async function loadMe() {
  me = await get('/auth/me');
  notify();
  return me;
}

// The signed-in user (restores the session of this tab after a reload), or null.
export async function currentUser() {
  if (me) return me;
  if (!accessToken && !(await refresh())) return null;
  try {
    return await loadMe();
  } catch {
    return null;
  }
}

// What this deployment tells its pages (GET /config: the payment provider, the mock's test
// outcomes when the mock is the provider), asked once per tab.
let config = null;
export function clientConfig() {
  if (!config) config = get('/config', { auth: false }).catch((err) => { config = null; throw err; });
  return config;
}

export function newKey() {
  return crypto.randomUUID();
}

// A Server-Sent Events stream that needs the bearer token: EventSource cannot send an
// Authorization header and a token must never be in a URL, so this reads the same stream with
// fetch. One connection at a time, no polling; after a drop it reconnects (1 s doubling to 15 s)
// with Last-Event-ID so the server continues where it was. `onEvent(name, data)` returning true
// ends the stream. Returns a function that closes it.
export function authStream(path, { onEvent, onState = () => {} }) {
  let stopped = false;
  let controller = null;
  let lastId = null;
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  async function run() {
    let delay = 1000;
    while (!stopped) {
      controller = new AbortController();
      try {
        const headers = { Accept: 'text/event-stream' };
        if (lastId !== null) headers['Last-Event-ID'] = lastId;
        const token = await bearer();
        if (token) headers.Authorization = `Bearer ${token}`;
        const response = await fetch(BASE + path, { headers, signal: controller.signal, cache: 'no-store', credentials: 'omit' });
        if (response.status === 401 && (await refresh())) continue;
        if (!response.ok) {
          const type = response.headers.get('content-type') || '';
          const problem = type.includes('json') ? await response.json().catch(() => null) : null;
          const error = new ApiError(response.status, problem, Number(response.headers.get('retry-after')) || null);
          if (response.status !== 429 && response.status < 500) {
            onEvent('error', error);
            return;
          }
          throw error;
        }
        onState('open');
        delay = 1000;
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = '';
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value.replace(/\r\n?/g, '\n');
          let end;
          while ((end = buffer.indexOf('\n\n')) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let name = 'message';
            const data = [];
            for (const line of block.split('\n')) {
              if (!line || line.startsWith(':')) continue;
              const colon = line.indexOf(':');
              const key = colon < 0 ? line : line.slice(0, colon);
              const val = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
              if (key === 'event') name = val;
              else if (key === 'data') data.push(val);
              else if (key === 'id') lastId = val;
            }
            if (!data.length) continue;
            let parsed;
            try { parsed = JSON.parse(data.join('\n')); } catch { parsed = data.join('\n'); }
            if (onEvent(name, parsed) === true) {
              stopped = true;
              controller.abort();
              return;
            }
          }
        }
        if (stopped) return;
        onState('reconnecting');  // the server ended the stream: resume after Last-Event-ID
        await sleep(delay);
        delay = Math.min(delay * 2, 15000);
      } catch (err) {
        if (stopped) return;
        onState('reconnecting', err);
        await sleep(err instanceof ApiError && err.retryAfter ? err.retryAfter * 1000 : delay);
        delay = Math.min(delay * 2, 15000);
      }
    }
  }
  run();
  return () => {
    stopped = true;
    if (controller) controller.abort();
  };
}
