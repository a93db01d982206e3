import { ValidateBy, type ValidationOptions } from 'class-validator';
import { isConcurrencyKey, KEY_RULE } from './concurrency-window.js';

/**
 * `metadata.concurrency_key`, when present, must be a valid key: the seed surfaces cannot add
 * body fields, so they name a key there (docs/flow-control.md). A bad one is a 400 on `metadata`.
 */
export function MetadataConcurrencyKey(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'metadataConcurrencyKey',
      validator: {
        validate: (value: unknown) =>
          typeof value !== 'object' ||
          value === null ||
          !('concurrency_key' in value) ||
          isConcurrencyKey((value as { concurrency_key: unknown }).concurrency_key),
        defaultMessage: () => `metadata.concurrency_key must be ${KEY_RULE}`,
      },
    },
    options,
  );
}

/** The key a new task names: the body's field, else its metadata's. */
export function concurrencyKeyOf(dto: { concurrency_key?: string; metadata?: Record<string, unknown> }): string | null {
  if (dto.concurrency_key !== undefined) return dto.concurrency_key;
  const fromMetadata = dto.metadata?.concurrency_key;
  return isConcurrencyKey(fromMetadata) ? fromMetadata : null;
}
