import { get, post } from './api.js';
import { confirmButton } from './confirm.js';
import { badge, fill, h, inFrame, json, throttle, time } from './dom.js';

export interface Task {
  task_id: string;
  type: string;
  state: string;
  priority: string;
  prompt: string | null;
  tags: string[];
  node_id: string | null;
  worker_id: string | null;
  attempt: number;
  retry_count: number;
  max_retries: number;
  progress: number | null;
  progress_message: string | null;
  result: unknown;
  error: unknown;
  created_at: string;
  run_at: string | null;
  dispatched_at: string | null;
  started_at: string | null;
  completed_at: string | null;
  cancelled_at: string | null;
}

interface LogLine {
  timestamp: string;
  type: string;
  level: string;
  message: string;
  attempt: number | null;
}

const ACTIVE = ['pending', 'dispatched', 'running'];

/** One task: its fields, result and error, its events, and cancel / retry / reply. */
export class TaskDetail {
  readonly root = h('section', { class: 'detail', 'aria-live': 'polite', 'data-testid': 'task-detail', hidden: true });
  private id: string | null = null;
  private readonly reload = throttle(() => this.load(), 1000);

  constructor(private readonly changedList: () => void) {}

  async open(id: string): Promise<void> {
    this.id = id;
    await this.load();
    this.root.querySelector<HTMLElement>('h3')?.focus();
  }

  /** A pushed event about this task redraws it (at most every second). */
  changed(id: string): void {
    if (id === this.id) this.reload();
  }

  private async load(): Promise<void> {
    const id = this.id;
    if (!id) return;
    const [task, logs] = await Promise.all([
      get<Task>(`/api/v1/tasks/${id}`),
      get<{ logs: LogLine[] }>(`/api/v1/tasks/${id}/logs?limit=200`),
    ]);
    inFrame('task-detail', () => this.render(task, logs.logs));
  }

  private act(path: string, body: unknown = {}): () => Promise<void> {
    return async () => {
      await post(`/api/v1/tasks/${this.id}/${path}`, body);
      await this.load();
      this.changedList();
    };
  }

  private render(t: Task, logs: LogLine[]): void {
    const close = h('button', { type: 'button', 'aria-label': 'Close task detail' }, '×');
    close.addEventListener('click', () => {
      this.id = null;
      this.root.hidden = true;
    });
    const actions = h('div', { class: 'actions' });
    if (ACTIVE.includes(t.state))
      actions.append(
        confirmButton(
          'Cancel task',
          'Cancel this task?',
          this.act('cancel', { reason: 'Cancelled from the dashboard' }),
          { testid: 'cancel-task', danger: true },
        ),
      );
    else
      actions.append(
        confirmButton('Retry', 'Run it again?', this.act('retry', { force: true }), { testid: 'retry-task' }),
      );
    const reply = h('textarea', { id: 'reply-text', rows: 2, 'aria-label': 'Reply message' });
    actions.append(
      h('label', { for: 'reply-text', class: 'sr-only' }, 'Reply'),
      reply,
      confirmButton(
        'Reply',
        'Send this reply (the task runs again)?',
        async () => {
          const message = reply.value.trim();
          if (!message) throw new Error('write a message first');
          await this.act('reply', { message })();
        },
        { testid: 'reply-task' },
      ),
    );
    const field = (name: string, value: string | number | null | undefined): Node[] => [
      h('dt', {}, name),
      h('dd', {}, value ?? '—'),
    ];
    fill(
      this.root,
      h('div', { class: 'detail-head' }, h('h3', { tabindex: -1 }, `Task ${t.task_id}`), close),
      h(
        'dl',
        { class: 'facts' },
        h('dt', {}, 'State'),
        h('dd', { 'data-testid': 'detail-state' }, badge(t.state)),
        ...field('Type', t.type),
        ...field('Priority', t.priority),
        ...field('Attempt', `${t.attempt} (retries ${t.retry_count}/${t.max_retries})`),
        ...field('Holder', t.node_id ?? t.worker_id),
        ...field('Progress', t.progress === null ? null : `${t.progress}% ${t.progress_message ?? ''}`),
        ...field('Created', time(t.created_at)),
        ...field('Started', time(t.started_at)),
        ...field('Finished', time(t.completed_at ?? t.cancelled_at)),
      ),
      actions,
      t.prompt ? h('details', {}, h('summary', {}, 'Prompt'), h('pre', {}, t.prompt)) : null,
      h('h4', {}, 'Result'),
      h('pre', { 'data-testid': 'detail-result' }, json(t.result)),
      h('h4', {}, 'Error'),
      h('pre', { 'data-testid': 'detail-error' }, json(t.error)),
      h('h4', {}, `Events (${logs.length})`),
      h(
        'ol',
        { class: 'log' },
        ...logs.map((l) =>
          h(
            'li',
            { class: `lvl-${l.level}` },
            h('time', { datetime: l.timestamp }, time(l.timestamp)),
            ` [${l.type}] `,
            l.message,
          ),
        ),
      ),
    );
    this.root.hidden = false;
  }
}
