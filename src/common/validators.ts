import { isAbsolute } from 'node:path';
import { ValidateBy, type ValidationOptions } from 'class-validator';

/** An absolute POSIX path without `..` segments (the seed's "Work directory must be an absolute path"). */
export function IsAbsolutePath(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isAbsolutePath',
      validator: {
        validate: (value: unknown) =>
          typeof value === 'string' && isAbsolute(value) && !value.split('/').includes('..') && !value.includes('\0'),
        defaultMessage: () => 'Work directory must be an absolute path',
      },
    },
    options,
  );
}

/** A plain JSON object (not an array, not null). */
export function IsPlainObject(options?: ValidationOptions): PropertyDecorator {
  return ValidateBy(
    {
      name: 'isPlainObject',
      validator: {
        validate: (value: unknown) => typeof value === 'object' && value !== null && !Array.isArray(value),
        defaultMessage: (args) => `${args?.property ?? 'value'} must be a JSON object`,
      },
    },
    options,
  );
}
