import 'reflect-metadata';
import { parse, quickTaskResult } from '../../src/modules/realtime/device-protocol.js';
import { TaskResultMessage } from '../../src/modules/realtime/device-messages.js';

const ID = '6f1c1e9e-2b7a-4c1e-9a53-0d3f2b9e8a11';

/** The quick check of task_result accepts only what class-validator accepts, and reads it the same. */
describe('task_result quick check', () => {
  it.each([
    [{ task_id: ID }],
    [{ task_id: ID, result: { ok: true, n: [1, 'two', null, { deep: { x: 1.5 } }] } }],
    [{ task_id: ID, success: true, status: 'completed', attempt: 3, retryable: false }],
    [{ task_id: ID, status: 'failed', error: 'boom' }],
    [{ task_id: ID, status: 'error', error: { code: 'E', detail: [1] } }],
    [{ task_id: ID.toUpperCase(), result: 'text' }],
    [{ task_id: '00000000-0000-0000-0000-000000000000', result: 7 }],
  ])('reads %j as parse() does', async (payload) => {
    const quick = quickTaskResult(payload);
    expect(quick).toBeInstanceOf(TaskResultMessage);
    expect({ ...quick }).toEqual({ ...(await parse(TaskResultMessage, payload)) });
  });

  it.each([
    ['a bad task id', { task_id: 'nope' }],
    ['a uuid of no version', { task_id: '6f1c1e9e-2b7a-0c1e-9a53-0d3f2b9e8a11' }],
    ['a string success', { task_id: ID, success: 'yes' }],
    ['an unknown status', { task_id: ID, status: 'done' }],
    ['attempt 0', { task_id: ID, attempt: 0 }],
    ['a fractional attempt', { task_id: ID, attempt: 1.5 }],
    ['an array error', { task_id: ID, error: [1] }],
    ['a numeric error', { task_id: ID, error: 3 }],
  ])('leaves %s to class-validator, which refuses it', async (_what, payload) => {
    expect(quickTaskResult(payload)).toBeUndefined();
    await expect(parse(TaskResultMessage, payload)).rejects.toMatchObject({ code: 'VALIDATION_ERROR' });
  });

  it.each([
    ['a null member', { task_id: ID, result: null }],
    ['a plugin', { task_id: ID, status: 'pending', plugin: 'p' }],
    ['an unknown member', { task_id: ID, extra: 1 }],
    ['a binary result', { task_id: ID, result: Buffer.from('x') }],
    ['a result with a date', { task_id: ID, result: { at: new Date(0) } }],
    ['not an object', 'text'],
    ['an array', [ID]],
  ])('leaves %s to parse()', (_what, payload) => {
    expect(quickTaskResult(payload)).toBeUndefined();
  });
});
