import { HttpException, HttpStatus, MethodNotAllowedException, UnprocessableEntityException } from '@nestjs/common';
import { ERROR_STATUS, ErrorCode, HTTP_STATUS_CODE } from '../../src/common/errors.js';
import { toAppError } from '../../src/common/exception.filter.js';

describe('error codes and statuses', () => {
  const statuses = Object.keys(HTTP_STATUS_CODE).map(Number);

  it('covers every error status Nest knows', () => {
    const nestErrorStatuses = Object.values(HttpStatus).filter((v): v is number => typeof v === 'number' && v >= 400);
    expect(statuses.sort()).toEqual(nestErrorStatuses.sort());
  });

  it.each(statuses)('an HttpException of %i keeps its status, under its own code', (status) => {
    const error = toAppError(new HttpException('why', status));
    expect(error.status).toBe(status);
    expect(error.code).toBe(HTTP_STATUS_CODE[status as keyof typeof HTTP_STATUS_CODE]);
    expect(ERROR_STATUS[error.code]).toBe(status);
  });

  it('gives 405 and 422 their own codes (no guessed 400)', () => {
    expect(toAppError(new MethodNotAllowedException())).toMatchObject({ code: ErrorCode.METHOD_NOT_ALLOWED });
    expect(toAppError(new MethodNotAllowedException()).status).toBe(405);
    expect(toAppError(new UnprocessableEntityException('no')).status).toBe(422);
    expect(toAppError(new UnprocessableEntityException('no')).code).toBe(ErrorCode.UNPROCESSABLE_ENTITY);
  });

  it('a status no table knows is a 500, not a 400', () => {
    const error = toAppError(new HttpException('odd', 499));
    expect(error.status).toBe(500);
    expect(error.code).toBe(ErrorCode.INTERNAL_ERROR);
  });

  it('maps body-parser failures by their type', () => {
    const charset = toAppError(
      Object.assign(new Error('unsupported charset "KLINGON"'), { type: 'charset.unsupported', status: 415 }),
    );
    expect(charset).toMatchObject({ code: ErrorCode.UNSUPPORTED_MEDIA_TYPE, details: { field: 'Content-Type' } });
    expect(charset.status).toBe(415);
    const big = toAppError(
      Object.assign(new Error('request entity too large'), { type: 'entity.too.large', status: 413 }),
    );
    expect(big).toMatchObject({ code: ErrorCode.PAYLOAD_TOO_LARGE, details: { field: 'body' } });
    const bad = toAppError(
      Object.assign(new SyntaxError('Unexpected token'), { type: 'entity.parse.failed', status: 400 }),
    );
    expect(bad).toMatchObject({ code: ErrorCode.VALIDATION_ERROR, details: { field: 'body' } });
  });

  it('anything else is 500 INTERNAL_ERROR and keeps its message to itself', () => {
    for (const thrown of [new Error('secret'), new TypeError('x is undefined'), 'a string', null, { status: 404 }]) {
      const error = toAppError(thrown);
      expect(error.status).toBe(500);
      expect(error).toMatchObject({ code: ErrorCode.INTERNAL_ERROR, message: 'Internal server error' });
    }
  });
});
