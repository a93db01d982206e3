import { HttpStatus } from '@nestjs/common';

/** Every error code the HTTP API can answer with, and its status, in one place. */
export enum ErrorCode {
  VALIDATION_ERROR = 'VALIDATION_ERROR',
  NOT_FOUND = 'NOT_FOUND',
  CONFLICT = 'CONFLICT',
  STALE_ATTEMPT = 'STALE_ATTEMPT',
  /** A device message before device_register/node_register. */
  NOT_REGISTERED = 'NOT_REGISTERED',
  UNAUTHORIZED = 'UNAUTHORIZED',
  FORBIDDEN = 'FORBIDDEN',
  RATE_LIMITED = 'RATE_LIMITED',
  PAYLOAD_TOO_LARGE = 'PAYLOAD_TOO_LARGE',
  RETRY_LIMIT_EXCEEDED = 'RETRY_LIMIT_EXCEEDED',
  SERVICE_UNAVAILABLE = 'SERVICE_UNAVAILABLE',
  INTERNAL_ERROR = 'INTERNAL_ERROR',
  // Agent services (seed 003)
  SERVICE_NOT_FOUND = 'SERVICE_NOT_FOUND',
  SERVICE_ALREADY_EXISTS = 'SERVICE_ALREADY_EXISTS',
  SERVICE_START_FAILED = 'SERVICE_START_FAILED',
  PORT_IN_USE = 'PORT_IN_USE',
  INSUFFICIENT_RESOURCES = 'INSUFFICIENT_RESOURCES',
  ROUTING_FAILED = 'ROUTING_FAILED',
  CONNECTION_NOT_FOUND = 'CONNECTION_NOT_FOUND',
  HEALTH_CHECK_FAILED = 'HEALTH_CHECK_FAILED',
  /** Seed 003's name for VALIDATION_ERROR, answered on its routes (see SEED003_PATHS). */
  INVALID_REQUEST = 'INVALID_REQUEST',
  /** An unknown tenant, or one the caller may not act for (never a 403: no existence leak). */
  TENANT_NOT_FOUND = 'TENANT_NOT_FOUND',
}

export const ERROR_STATUS: Record<ErrorCode, HttpStatus> = {
  [ErrorCode.VALIDATION_ERROR]: HttpStatus.BAD_REQUEST,
  [ErrorCode.NOT_FOUND]: HttpStatus.NOT_FOUND,
  [ErrorCode.CONFLICT]: HttpStatus.CONFLICT,
  [ErrorCode.STALE_ATTEMPT]: HttpStatus.CONFLICT,
  [ErrorCode.NOT_REGISTERED]: HttpStatus.CONFLICT,
  [ErrorCode.UNAUTHORIZED]: HttpStatus.UNAUTHORIZED,
  [ErrorCode.FORBIDDEN]: HttpStatus.FORBIDDEN,
  [ErrorCode.RATE_LIMITED]: HttpStatus.TOO_MANY_REQUESTS,
  [ErrorCode.PAYLOAD_TOO_LARGE]: HttpStatus.PAYLOAD_TOO_LARGE,
  [ErrorCode.RETRY_LIMIT_EXCEEDED]: HttpStatus.CONFLICT,
  [ErrorCode.SERVICE_UNAVAILABLE]: HttpStatus.SERVICE_UNAVAILABLE,
  [ErrorCode.INTERNAL_ERROR]: HttpStatus.INTERNAL_SERVER_ERROR,
  [ErrorCode.SERVICE_NOT_FOUND]: HttpStatus.NOT_FOUND,
  [ErrorCode.SERVICE_ALREADY_EXISTS]: HttpStatus.CONFLICT,
  [ErrorCode.SERVICE_START_FAILED]: HttpStatus.BAD_GATEWAY,
  [ErrorCode.PORT_IN_USE]: HttpStatus.CONFLICT,
  [ErrorCode.INSUFFICIENT_RESOURCES]: HttpStatus.SERVICE_UNAVAILABLE,
  [ErrorCode.ROUTING_FAILED]: HttpStatus.SERVICE_UNAVAILABLE,
  [ErrorCode.CONNECTION_NOT_FOUND]: HttpStatus.NOT_FOUND,
  [ErrorCode.HEALTH_CHECK_FAILED]: HttpStatus.SERVICE_UNAVAILABLE,
  [ErrorCode.INVALID_REQUEST]: HttpStatus.BAD_REQUEST,
  [ErrorCode.TENANT_NOT_FOUND]: HttpStatus.NOT_FOUND,
};

export type ErrorDetails = Record<string, unknown>;

/** A failure the client can act on: a code, a message and (for validation) the field. */
export class AppError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: ErrorDetails,
  ) {
    super(message);
  }

  get status(): HttpStatus {
    return ERROR_STATUS[this.code];
  }

  static notFound(what: string, id: string): AppError {
    return new AppError(ErrorCode.NOT_FOUND, `${what} not found: ${id}`);
  }

  static validation(field: string, message: string): AppError {
    return new AppError(ErrorCode.VALIDATION_ERROR, 'Invalid input data', { field, message });
  }
}
