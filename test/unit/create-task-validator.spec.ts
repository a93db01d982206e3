import { validateSync } from 'class-validator';
import { CreateTaskDto } from '../../src/modules/tasks/dto/create-task.dto.js';
import { CreateTaskFastValidator } from '../../src/modules/tasks/dto/create-task.validator.js';
import { timeOrderedUuid } from '../../src/modules/tasks/task-id.js';

/** Values each field may take in a generated item: valid ones, wrong types, edges of each rule. */
const POOL: Record<string, unknown[]> = {
  type: ['prompt', '', 't'.repeat(100), 't'.repeat(101), 7, null],
  prompt: ['p', '', 'p'.repeat(200_001), 42, null, ['p']],
  data: [{ a: 1 }, {}, [1], 'd', null, 0],
  priority: ['low', 'medium', 'high', 'urgent', 'asap', 2, null],
  tags: [[], ['a'], ['a', ''], ['x'.repeat(64)], ['x'.repeat(65)], ['a', 7], 'a', Array(51).fill('t'), null],
  required_tags: [[], ['gpu'], [''], Array(21).fill('t'), 'gpu'],
  work_directory: ['/w', '/', 'rel', '/a/../b', '/a\0b', '/' + 'x'.repeat(4096), 5],
  environment: ['node', '', 'e'.repeat(201), 1],
  files: [[], ['a'], [{ p: 1 }], Array(1001).fill('f'), 'f', {}],
  timeout_seconds: [1, 604800, 0, 604801, 1.5, '60', null],
  max_retries: [0, 100, -1, 101, 2.5, '3'],
  run_at: [
    '2030-01-01T00:00:00Z',
    '2030-01-01T00:00:00.123+02:00',
    '2030-01-01',
    '2026-02-30T10:00:00Z',
    'tomorrow',
    0,
  ],
  target_node_id: ['n', '', 'n'.repeat(201), 1],
  metadata: [{}, { k: 'v' }, [], 'm', null],
  idempotency_key: ['k', '', 'k'.repeat(201), 1],
  awaits_callback: ['plugin', '', 'p'.repeat(65), 1],
  owner: ['me'],
  valueOf: [1],
};

/** A deterministic generator: the same items on every run. */
function random(seed: number): () => number {
  let s = seed;
  return () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return s / 2 ** 31;
  };
}

const classValidatorPasses = (item: Record<string, unknown>): boolean =>
  validateSync(Object.assign(Object.create(CreateTaskDto.prototype) as object, item), {
    whitelist: true,
    forbidNonWhitelisted: true,
  }).length === 0;

describe('CreateTaskFastValidator', () => {
  const fast = new CreateTaskFastValidator();

  it('passes exactly the items class-validator passes (5,000 generated items)', () => {
    const next = random(27);
    const fields = Object.keys(POOL);
    let passes = 0;
    for (let n = 0; n < 5000; n++) {
      const item: Record<string, unknown> = {};
      // Mostly valid-looking items with a few fields, so that both answers are common.
      const count = Math.floor(next() * 5);
      for (let f = 0; f < count; f++) {
        const field = fields[Math.floor(next() * (fields.length - 2))];
        const pool = POOL[field];
        item[field] = next() < 0.6 ? pool[0] : pool[Math.floor(next() * pool.length)];
      }
      if (next() < 0.02) item[next() < 0.5 ? 'owner' : 'valueOf'] = 1;
      const expected = classValidatorPasses(item);
      expect({ item, passes: fast.isValid(item) }).toEqual({ item, passes: expected });
      if (expected) passes++;
    }
    expect(passes).toBeGreaterThan(500);
    expect(passes).toBeLessThan(4500);
  });

  it.each(Object.entries(POOL).flatMap(([field, values]) => values.map((v) => [field, v] as const)))(
    'agrees with class-validator on %s = %p',
    (field, value) => {
      for (const base of [{ prompt: 'p' }, { data: { a: 1 } }, {}]) {
        const item = { ...base, [field]: value };
        expect(fast.isValid(item)).toBe(classValidatorPasses(item));
      }
    },
  );
});

describe('timeOrderedUuid', () => {
  it('makes version 7 UUIDs in strictly increasing order, stamped with the time', () => {
    const before = Date.now();
    const ids = Array.from({ length: 20_000 }, () => timeOrderedUuid());
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    for (let i = 1; i < ids.length; i++) expect(ids[i] > ids[i - 1]).toBe(true);
    const ms = parseInt(ids[0].slice(0, 8) + ids[0].slice(9, 13), 16);
    expect(ms).toBeGreaterThanOrEqual(before);
    expect(ms).toBeLessThanOrEqual(Date.now() + 10);
  });
});
