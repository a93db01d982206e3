import { ApiError, get, probeAdmin, useKey } from './api.js';
import { forgetKey, saveKey, takeKey } from './auth.js';
import { fill, h, throttle } from './dom.js';
import { Live } from './live.js';
import { LlmView } from './llm.js';
import { NodesView } from './nodes.js';
import { OverviewView } from './overview.js';
import { RolloutsView } from './rollouts.js';
import { ServicesView } from './services.js';
import { TasksView } from './tasks.js';
import type { View } from './view.js';

/** The safety net under the pushed events: everything on screen is re-read this often. */
const SAFETY_REFRESH_MS = 45_000;

const app = document.getElementById('app') as HTMLElement;
const login = document.getElementById('login') as HTMLFormElement;
const keyInput = document.getElementById('key') as HTMLInputElement;
const loginError = document.getElementById('login-error') as HTMLElement;

function showLogin(message = ''): void {
  app.hidden = true;
  fill(app);
  login.hidden = false;
  loginError.textContent = message;
  keyInput.value = '';
  keyInput.focus();
}

/** Any route a key of any role may read: tells a wrong key from a right one. */
async function checkKey(key: string): Promise<string | null> {
  useKey(key, () => undefined);
  try {
    await get('/api/v1/statistics?period=1h');
    return null;
  } catch (e) {
    return e instanceof ApiError && e.status === 401 ? 'That key is not valid.' : (e as Error).message;
  }
}

async function start(key: string): Promise<void> {
  const timers: ReturnType<typeof setInterval>[] = [];
  // Until the live connection exists there is nothing to stop (a 401 can come first).
  let stopLive = (): void => undefined;
  const logout = (message = ''): void => {
    stopLive();
    timers.forEach(clearInterval);
    forgetKey();
    showLogin(message);
  };
  useKey(key, () => logout('The key was refused; enter one again.'));
  const admin = await probeAdmin();
  const conn = h('span', { class: 'conn', 'data-testid': 'conn', role: 'status' }, 'connecting');
  const views: View[] = [];
  const live: Live = new Live(key, {
    task: (type, data) => {
      askCounts();
      overview.task(type);
      if (current !== overview) current.task?.(type, data);
    },
    node: (type, data) => current.node?.(type, data),
    counts: (c) => overview.counts(c),
    reconnected: () => refreshAll(),
    connection: (state) => {
      conn.textContent = state;
      conn.className = `conn ${state}`;
    },
    unauthorized: () => logout('The key was refused by the event stream.'),
  });
  stopLive = () => live.stop();
  const ctx = { admin, live };
  const overview = new OverviewView();
  views.push(
    overview,
    new TasksView(),
    new NodesView(ctx),
    new RolloutsView(),
    new ServicesView(ctx),
    new LlmView(ctx),
  );
  let current: View = overview;
  const askCounts = throttle(async () => live.askCounts(), 500);

  const nav = h('nav', { 'aria-label': 'Views' });
  const tabs = new Map<View, HTMLButtonElement>();
  const show = (view: View): void => {
    current = view;
    for (const v of views) {
      v.root.hidden = v !== view;
      tabs.get(v)?.setAttribute('aria-current', v === view ? 'page' : 'false');
    }
    void view.refresh().catch((e: Error) => console.warn(`${view.id}: ${e.message}`));
  };
  for (const v of views) {
    const tab = h('button', { type: 'button', 'data-view': v.id }, v.title);
    tab.addEventListener('click', () => show(v));
    tabs.set(v, tab);
    nav.append(tab);
  }
  const out = h('button', { type: 'button', class: 'logout' }, 'Forget key');
  out.addEventListener('click', () => logout());
  const refreshAll = (): void => {
    live.askCounts();
    void current.refresh().catch((e: Error) => console.warn(`${current.id}: ${e.message}`));
  };

  fill(
    app,
    h(
      'header',
      {},
      h('h1', {}, 'taskhub'),
      conn,
      h('span', { class: 'role' }, admin ? 'admin key' : 'key without admin rights: admin actions hidden'),
      out,
    ),
    nav,
    h('main', { id: 'main' }, ...views.map((v) => v.root)),
  );
  login.hidden = true;
  app.hidden = false;
  show(overview);
  await live.start();
  timers.push(setInterval(refreshAll, SAFETY_REFRESH_MS));
  document.addEventListener('visibilitychange', () => document.visibilityState === 'visible' && refreshAll());
}

login.addEventListener('submit', (e) => {
  e.preventDefault();
  const key = keyInput.value.trim();
  if (!key) return;
  void checkKey(key).then((problem) => {
    if (problem) return showLogin(problem);
    saveKey(key);
    return start(key);
  });
});

const key = takeKey();
if (key) void start(key).catch((e: Error) => showLogin(e.message));
else showLogin();
