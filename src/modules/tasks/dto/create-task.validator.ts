import type { ValidationPipe } from '@nestjs/common';
import { closeArrayGaps } from '@nestjs/common/utils/close-array-gaps.util.js';
import { stripProtoKeys } from '@nestjs/common/utils/strip-proto-keys.util.js';
import { getMetadataStorage, validateSync, ValidationTypes, type ValidationArguments } from 'class-validator';
import { createValidationPipe, validationError } from '../../../common/validation.js';
import { BatchCreateTasksDto, CreateTaskDto } from './create-task.dto.js';

let pipe: ValidationPipe | undefined;

/**
 * The body of `POST /api/v1/tasks/batch`, validated as the global ValidationPipe validates a
 * BatchCreateTasksDto (same preparation, same rules, same VALIDATION_ERROR), without its
 * class-transformer copy of every item: `tasks` is `unknown[]`, so the copy changes nothing the
 * items' own validation (CreateTaskFastValidator, then class-validator) does not see, and it
 * was the largest share of the hub's CPU per batched task. A body that is not a plain object
 * goes through the pipe itself.
 */
export async function validateBatchBody(body: unknown): Promise<BatchCreateTasksDto> {
  if (
    typeof body !== 'object' ||
    body === null ||
    Array.isArray(body) ||
    Object.getPrototypeOf(body) !== Object.prototype
  ) {
    pipe ??= createValidationPipe();
    return (await pipe.transform(body, {
      type: 'body',
      metatype: BatchCreateTasksDto,
      data: undefined,
    })) as BatchCreateTasksDto;
  }
  // What the pipe does before it copies the value: no gaps in arrays, no prototype keys anywhere.
  closeArrayGaps(body);
  stripProtoKeys(body);
  const dto = Object.assign(Object.create(BatchCreateTasksDto.prototype) as BatchCreateTasksDto, body);
  const errors = validateSync(dto, { whitelist: true, forbidNonWhitelisted: true, validationError: { target: false } });
  if (errors.length) throw validationError(errors);
  return dto;
}

/** What a constraint check needs at run time, resolved once. */
interface Check {
  validate: (value: unknown, args: ValidationArguments) => unknown;
  each: boolean;
  constraints: unknown[];
  validateIf?: (object: object, value: unknown) => boolean;
}

interface Property {
  name: string;
  /** ValidateIf / IsOptional: the property is validated only when every one says so. */
  conditions: ((object: object, value: unknown) => boolean)[];
  checks: Check[];
}

interface Compiled {
  properties: Property[];
  known: Set<string>;
}

/**
 * A fast "is this item valid?" for the items of a batch, compiled once from CreateTaskDto's own
 * class-validator rules (the same constraint functions, with the same arguments), without the
 * executor's per-call machinery: error objects for every property, metadata filtering,
 * constraint instances looked up from the container on every call. It answers only yes or
 * "not sure": an item it does not pass is validated again by `validateSync`, which gives the
 * error answer, so the answers for bad items are class-validator's own.
 *
 * It mirrors what `validateSync(dto, { whitelist: true, forbidNonWhitelisted: true })` does on
 * a CreateTaskDto: unknown properties fail; per property, the conditional rules decide whether
 * it is validated; then every constraint (with `each` over arrays, sets and maps) must hold.
 * A rule of any other kind (nested, promise, defined, async constraints) makes it decline
 * every item, so a new kind of rule on the DTO can only make batches slower, never laxer.
 */
export class CreateTaskFastValidator {
  private compiled?: Compiled | null;

  /** True only when class-validator would find no error in `item` (a non-null, non-array object). */
  isValid(item: Record<string, unknown>): boolean {
    if (this.compiled === undefined) this.compiled = compile();
    const compiled = this.compiled;
    if (compiled === null) return false;
    for (const key of Object.keys(item)) if (!compiled.known.has(key)) return false;
    for (const p of compiled.properties) {
      const value = item[p.name];
      let validate = true;
      for (const c of p.conditions) if (!c(item, value)) validate = false;
      if (!validate) continue;
      for (const check of p.checks) {
        if (check.validateIf && !check.validateIf(item, value)) continue;
        const args: ValidationArguments = {
          targetName: CreateTaskDto.name,
          property: p.name,
          object: item,
          value,
          constraints: check.constraints,
        };
        if (check.each && (Array.isArray(value) || value instanceof Set || value instanceof Map)) {
          const values = value instanceof Map ? [...value.values()] : value;
          for (const v of values) if (!passed(check.validate(v, args))) return false;
        } else if (!passed(check.validate(value, args))) return false;
      }
    }
    return true;
  }
}

/** A promise (an async rule) is "not sure": class-validator decides. */
const passed = (result: unknown): boolean => result === true || (!!result && !isThenable(result));
const isThenable = (v: unknown): boolean =>
  typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';

interface Meta {
  type: string;
  propertyName: string;
  constraints: unknown[];
  constraintCls: new () => unknown;
  each?: boolean;
  validateIf?: (object: object, value: unknown) => boolean;
}
interface ConstraintMeta {
  async: boolean;
  instance: { validate: Check['validate'] };
}
interface Storage {
  getTargetValidationMetadatas(
    target: unknown,
    schema: string,
    always: boolean,
    strictGroups: boolean,
    groups?: string[],
  ): Meta[];
  groupByPropertyName(metadata: Meta[]): Record<string, Meta[]>;
  getTargetValidatorConstraints(target: unknown): ConstraintMeta[];
}

/** The rules validateSync applies to a CreateTaskDto with no groups; null when one cannot be mirrored. */
function compile(): Compiled | null {
  const storage = getMetadataStorage() as unknown as Storage;
  const metadatas = storage.getTargetValidationMetadatas(CreateTaskDto, '', false, false, undefined);
  if (!metadatas.length) return null;
  const grouped = storage.groupByPropertyName(metadatas);
  const properties: Property[] = [];
  const known = new Set<string>();
  for (const [name, metas] of Object.entries(grouped)) {
    if (!metas.length) continue;
    known.add(name);
    const property: Property = { name, conditions: [], checks: [] };
    for (const m of metas) {
      if (m.type === ValidationTypes.WHITELIST) continue;
      if (m.type === ValidationTypes.CONDITIONAL_VALIDATION) {
        property.conditions.push(m.constraints[0] as Property['conditions'][number]);
        continue;
      }
      if (m.type !== ValidationTypes.CUSTOM_VALIDATION) return null;
      for (const c of storage.getTargetValidatorConstraints(m.constraintCls)) {
        if (c.async) return null;
        const instance = c.instance;
        property.checks.push({
          validate: instance.validate.bind(instance),
          each: m.each === true,
          constraints: m.constraints,
          validateIf: m.validateIf,
        });
      }
    }
    properties.push(property);
  }
  return { properties, known };
}
