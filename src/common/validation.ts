import { ValidationPipe, type ValidationError } from '@nestjs/common';
import { AppError, ErrorCode } from './errors.js';
import { cacheValidationMetadata } from './validation-cache.js';

interface FieldError {
  field: string;
  message: string;
}

function flatten(errors: ValidationError[], parent = ''): FieldError[] {
  return errors.flatMap((e) => {
    const field = parent ? `${parent}.${e.property}` : e.property;
    const own = Object.values(e.constraints ?? {}).map((message) => ({ field, message }));
    return [...own, ...flatten(e.children ?? [], field)];
  });
}

/** `{field, message}` of the first problem, plus every problem in `errors`. */
export function validationError(errors: ValidationError[]): AppError {
  const all = flatten(errors);
  const first = all[0] ?? { field: 'body', message: 'invalid' };
  return new AppError(ErrorCode.VALIDATION_ERROR, 'Invalid input data', { ...first, errors: all });
}

export function createValidationPipe(): ValidationPipe {
  cacheValidationMetadata();
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    exceptionFactory: validationError,
  });
}
