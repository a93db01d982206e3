import { randomUUID } from 'node:crypto';
import { runAsSystem } from '../../src/database/tenant-context.js';
import { TaskAssignmentsRepository } from '../../src/modules/tasks/task-assignments.repository.js';
import { startTestApp, type TestApp, truncate } from '../support/test-app.js';

/**
 * The cross-hub invariant at its root (docs/flow-control.md, "Across hubs"): two rounds (two
 * hubs: two connections) write at the same instant, each planned the last slot of one key for
 * a different node. The write of a round that holds tasks of a limited key locks the key's row
 * and counts again in a new statement, so only one of them takes it. Without the lock both
 * statements count from snapshots taken before either committed, and both assign. The app's own
 * dispatcher is kept out: rows are written directly and its safety tick is an hour.
 */
describe('concurrency keys: two rounds racing for the last slot of a key', () => {
  let t: TestApp;
  let repo: TaskAssignmentsRepository;

  beforeAll(async () => {
    // The liveness sweep is kept out too: it marks these socketless nodes offline, and once it did
    // so between a try's reset and its writes, so neither write found an online node (CI, try 29).
    t = await startTestApp({ DISPATCH_SAFETY_TICK_MS: '3600000', NODE_LIVENESS_TICK_MS: '3600000' });
    repo = t.app.get(TaskAssignmentsRepository);
    await t.db.query(`INSERT INTO concurrency_limits (tenant_id, key, max_running) VALUES ('default', 'race', 1)`);
    await t.db.query(
      `INSERT INTO nodes (id, name, tenant_id, status, capacity) VALUES
         ('race-a', 'A', 'default', 'online', 1), ('race-b', 'B', 'default', 'online', 1)`,
    );
  });

  afterAll(async () => {
    await t.close();
  });

  it('of two simultaneous writes for the last slot, one takes it (30 tries)', async () => {
    for (let i = 0; i < 30; i++) {
      await truncate(t.db, 'tasks, task_events');
      await t.db.query(`UPDATE nodes SET status = 'online', draining = false WHERE id LIKE 'race-%'`);
      const [x, y] = [randomUUID(), randomUUID()];
      await t.db.query(
        `INSERT INTO tasks (id, tenant_id, type, prompt, concurrency_key, status, run_at)
         VALUES ($1, 'default', 'prompt', 'x', 'race', 'pending', now()), ($2, 'default', 'prompt', 'y', 'race', 'pending', now())`,
        [x, y],
      );
      const limited = [{ tenant_id: 'default', key: 'race' }];
      const taken = await runAsSystem(() =>
        Promise.all([
          repo.assignToNodes([{ id: x, node_id: 'race-a', seq: 1 }], limited),
          repo.assignToNodes([{ id: y, node_id: 'race-b', seq: 1 }], limited),
        ]),
      );
      expect({ try: i, taken: taken.flat().length }).toEqual({ try: i, taken: 1 });
    }
  });
});
