import { get, post, query } from './api.js';
import { confirmButton } from './confirm.js';
import { ago, badge, fill, h, inFrame, throttle } from './dom.js';
import { TaskDetail, type Task } from './task-detail.js';
import { STATES, type View } from './view.js';

const PAGE = 25;

interface TaskPage {
  tasks: Task[];
  pagination: { total: number; limit: number; offset: number; has_more: boolean };
}

/** Filterable, paginated task list; a task's detail; failures grouped by error message. */
export class TasksView implements View {
  readonly id = 'tasks';
  readonly title = 'Tasks';
  readonly root = h('section', { class: 'view', 'aria-labelledby': 'h-tasks' });
  private offset = 0;
  private readonly status = h('select', { id: 'f-status', name: 'status' });
  private readonly type = h('input', { id: 'f-type', name: 'type', type: 'search', placeholder: 'e.g. prompt' });
  private readonly tag = h('input', { id: 'f-tag', name: 'tag', type: 'search' });
  private readonly body = h('tbody', {});
  private readonly pager = h('p', { class: 'pager', role: 'status' });
  private readonly prev = h('button', { type: 'button' }, '← Newer');
  private readonly next = h('button', { type: 'button' }, 'Older →');
  private readonly groups = h('div', { class: 'groups' });
  private readonly detail = new TaskDetail(() => this.reload());
  private shown = new Set<string>();
  /** Pushed events redraw the list at most every 2 s. */
  readonly reload = throttle(() => this.load(), 2000);

  constructor() {
    this.status.append(h('option', { value: '' }, 'any'), ...STATES.map((s) => h('option', { value: s }, s)));
    const form = h(
      'form',
      { class: 'filters', role: 'search' },
      h('label', { for: 'f-status' }, 'Status'),
      this.status,
      h('label', { for: 'f-type' }, 'Type'),
      this.type,
      h('label', { for: 'f-tag' }, 'Tag'),
      this.tag,
      h('button', { type: 'submit' }, 'Filter'),
    );
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.offset = 0;
      void this.load();
    });
    this.status.addEventListener('change', () => form.requestSubmit());
    this.prev.addEventListener('click', () => this.page(-PAGE));
    this.next.addEventListener('click', () => this.page(PAGE));
    const groupsButton = h('button', { type: 'button', 'data-testid': 'load-failures' }, 'Group failures by error');
    groupsButton.addEventListener('click', () => void this.loadGroups());
    fill(
      this.root,
      h('h2', { id: 'h-tasks' }, 'Tasks'),
      form,
      h(
        'div',
        { class: 'table-wrap' },
        h(
          'table',
          { 'data-testid': 'task-table' },
          h(
            'thead',
            {},
            h(
              'tr',
              {},
              ...['Task', 'Type', 'State', 'Priority', 'Created', 'Holder'].map((c) => h('th', { scope: 'col' }, c)),
            ),
          ),
          this.body,
        ),
      ),
      h('div', { class: 'pager-row' }, this.prev, this.pager, this.next),
      this.detail.root,
      h('h3', {}, 'Failures'),
      groupsButton,
      this.groups,
    );
  }

  refresh(): Promise<void> {
    return this.load();
  }

  task(_type: string, data: Record<string, unknown>): void {
    this.reload();
    if (typeof data.task_id === 'string') this.detail.changed(data.task_id);
  }

  private page(delta: number): void {
    this.offset = Math.max(0, this.offset + delta);
    void this.load();
  }

  private async load(): Promise<void> {
    const page = await get<TaskPage>(
      `/api/v1/tasks${query({ status: this.status.value, type: this.type.value.trim(), tag: this.tag.value.trim(), limit: PAGE, offset: this.offset })}`,
    );
    inFrame('tasks-list', () => this.render(page));
  }

  private render({ tasks, pagination: p }: TaskPage): void {
    this.shown = new Set(tasks.map((t) => t.task_id));
    const rows = tasks.map((t) => {
      const open = h(
        'button',
        { type: 'button', class: 'link', 'data-testid': `task-${t.task_id}` },
        t.task_id.slice(0, 8),
      );
      open.addEventListener('click', () => void this.detail.open(t.task_id));
      return h(
        'tr',
        {},
        h('td', {}, open),
        h('td', {}, t.type),
        h('td', { 'data-testid': `state-${t.task_id}` }, badge(t.state)),
        h('td', {}, t.priority),
        h('td', { title: t.created_at }, ago(t.created_at)),
        h('td', {}, t.node_id ?? t.worker_id ?? '—'),
      );
    });
    fill(this.body, ...(rows.length ? rows : [h('tr', {}, h('td', { colspan: 6, class: 'muted' }, 'No tasks'))]));
    fill(this.pager, p.total ? `${p.offset + 1}–${p.offset + tasks.length} of ${p.total}` : '0 tasks');
    this.prev.disabled = p.offset === 0;
    this.next.disabled = !p.has_more;
  }

  /** Up to 200 failed tasks, grouped by their error message, each group with "retry all". */
  private async loadGroups(): Promise<void> {
    const page = await get<TaskPage>(`/api/v1/tasks${query({ status: 'failed,timed_out', limit: 200 })}`);
    const byMessage = new Map<string, Task[]>();
    for (const t of page.tasks) {
      const message =
        (t.error as { message?: string } | null)?.message ?? (t.state === 'timed_out' ? 'timed out' : 'no message');
      byMessage.set(message, [...(byMessage.get(message) ?? []), t]);
    }
    const groups = [...byMessage.entries()].sort((a, b) => b[1].length - a[1].length);
    inFrame('tasks-groups', () =>
      fill(
        this.groups,
        groups.length === 0
          ? h('p', { class: 'muted' }, 'No failed tasks')
          : h(
              'ul',
              { class: 'group-list' },
              ...groups.map(([message, tasks]) =>
                h(
                  'li',
                  {},
                  h('strong', {}, String(tasks.length)),
                  ' × ',
                  h('code', {}, message),
                  ' ',
                  confirmButton(`Retry all ${tasks.length}`, `Retry ${tasks.length} tasks?`, async () => {
                    await Promise.all(tasks.map((t) => post(`/api/v1/tasks/${t.task_id}/retry`, { force: true })));
                    await Promise.all([this.load(), this.loadGroups()]);
                  }),
                ),
              ),
            ),
        page.pagination.has_more
          ? h('p', { class: 'muted' }, `Grouped the newest 200 of ${page.pagination.total}.`)
          : null,
      ),
    );
  }
}
