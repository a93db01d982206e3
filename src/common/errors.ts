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
  // The rest of HTTP's error statuses, each under its own name (raised by the framework, the
  // body parser or a library, seldom by our code): see HTTP_STATUS_CODE below.
  PAYMENT_REQUIRED = 'PAYMENT_REQUIRED',
  METHOD_NOT_ALLOWED = 'METHOD_NOT_ALLOWED',
  NOT_ACCEPTABLE = 'NOT_ACCEPTABLE',
  PROXY_AUTHENTICATION_REQUIRED = 'PROXY_AUTHENTICATION_REQUIRED',
  REQUEST_TIMEOUT = 'REQUEST_TIMEOUT',
  GONE = 'GONE',
  LENGTH_REQUIRED = 'LENGTH_REQUIRED',
  PRECONDITION_FAILED = 'PRECONDITION_FAILED',
  URI_TOO_LONG = 'URI_TOO_LONG',
  UNSUPPORTED_MEDIA_TYPE = 'UNSUPPORTED_MEDIA_TYPE',
  RANGE_NOT_SATISFIABLE = 'RANGE_NOT_SATISFIABLE',
  EXPECTATION_FAILED = 'EXPECTATION_FAILED',
  I_AM_A_TEAPOT = 'I_AM_A_TEAPOT',
  MISDIRECTED_REQUEST = 'MISDIRECTED_REQUEST',
  UNPROCESSABLE_ENTITY = 'UNPROCESSABLE_ENTITY',
  LOCKED = 'LOCKED',
  FAILED_DEPENDENCY = 'FAILED_DEPENDENCY',
  PRECONDITION_REQUIRED = 'PRECONDITION_REQUIRED',
  UNRECOVERABLE_ERROR = 'UNRECOVERABLE_ERROR',
  NOT_IMPLEMENTED = 'NOT_IMPLEMENTED',
  BAD_GATEWAY = 'BAD_GATEWAY',
  GATEWAY_TIMEOUT = 'GATEWAY_TIMEOUT',
  HTTP_VERSION_NOT_SUPPORTED = 'HTTP_VERSION_NOT_SUPPORTED',
  INSUFFICIENT_STORAGE = 'INSUFFICIENT_STORAGE',
  LOOP_DETECTED = 'LOOP_DETECTED',
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
  /** A tenant's own limit (`limits.max_tasks`) refuses the request; details name the limit. */
  TENANT_LIMIT_EXCEEDED = 'TENANT_LIMIT_EXCEEDED',
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
  [ErrorCode.PAYMENT_REQUIRED]: HttpStatus.PAYMENT_REQUIRED,
  [ErrorCode.METHOD_NOT_ALLOWED]: HttpStatus.METHOD_NOT_ALLOWED,
  [ErrorCode.NOT_ACCEPTABLE]: HttpStatus.NOT_ACCEPTABLE,
  [ErrorCode.PROXY_AUTHENTICATION_REQUIRED]: HttpStatus.PROXY_AUTHENTICATION_REQUIRED,
  [ErrorCode.REQUEST_TIMEOUT]: HttpStatus.REQUEST_TIMEOUT,
  [ErrorCode.GONE]: HttpStatus.GONE,
  [ErrorCode.LENGTH_REQUIRED]: HttpStatus.LENGTH_REQUIRED,
  [ErrorCode.PRECONDITION_FAILED]: HttpStatus.PRECONDITION_FAILED,
  [ErrorCode.URI_TOO_LONG]: HttpStatus.URI_TOO_LONG,
  [ErrorCode.UNSUPPORTED_MEDIA_TYPE]: HttpStatus.UNSUPPORTED_MEDIA_TYPE,
  [ErrorCode.RANGE_NOT_SATISFIABLE]: HttpStatus.REQUESTED_RANGE_NOT_SATISFIABLE,
  [ErrorCode.EXPECTATION_FAILED]: HttpStatus.EXPECTATION_FAILED,
  [ErrorCode.I_AM_A_TEAPOT]: HttpStatus.I_AM_A_TEAPOT,
  [ErrorCode.MISDIRECTED_REQUEST]: HttpStatus.MISDIRECTED,
  [ErrorCode.UNPROCESSABLE_ENTITY]: HttpStatus.UNPROCESSABLE_ENTITY,
  [ErrorCode.LOCKED]: HttpStatus.LOCKED,
  [ErrorCode.FAILED_DEPENDENCY]: HttpStatus.FAILED_DEPENDENCY,
  [ErrorCode.PRECONDITION_REQUIRED]: HttpStatus.PRECONDITION_REQUIRED,
  [ErrorCode.UNRECOVERABLE_ERROR]: HttpStatus.UNRECOVERABLE_ERROR,
  [ErrorCode.NOT_IMPLEMENTED]: HttpStatus.NOT_IMPLEMENTED,
  [ErrorCode.BAD_GATEWAY]: HttpStatus.BAD_GATEWAY,
  [ErrorCode.GATEWAY_TIMEOUT]: HttpStatus.GATEWAY_TIMEOUT,
  [ErrorCode.HTTP_VERSION_NOT_SUPPORTED]: HttpStatus.HTTP_VERSION_NOT_SUPPORTED,
  [ErrorCode.INSUFFICIENT_STORAGE]: HttpStatus.INSUFFICIENT_STORAGE,
  [ErrorCode.LOOP_DETECTED]: HttpStatus.LOOP_DETECTED,
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
  [ErrorCode.TENANT_LIMIT_EXCEEDED]: HttpStatus.TOO_MANY_REQUESTS,
};

/** HttpStatus members below 400: everything else in the enum is an error status. */
type NonErrorStatus =
  | HttpStatus.CONTINUE
  | HttpStatus.SWITCHING_PROTOCOLS
  | HttpStatus.PROCESSING
  | HttpStatus.EARLYHINTS
  | HttpStatus.OK
  | HttpStatus.CREATED
  | HttpStatus.ACCEPTED
  | HttpStatus.NON_AUTHORITATIVE_INFORMATION
  | HttpStatus.NO_CONTENT
  | HttpStatus.RESET_CONTENT
  | HttpStatus.PARTIAL_CONTENT
  | HttpStatus.MULTI_STATUS
  | HttpStatus.ALREADY_REPORTED
  | HttpStatus.CONTENT_DIFFERENT
  | HttpStatus.AMBIGUOUS
  | HttpStatus.MOVED_PERMANENTLY
  | HttpStatus.FOUND
  | HttpStatus.SEE_OTHER
  | HttpStatus.NOT_MODIFIED
  | HttpStatus.TEMPORARY_REDIRECT
  | HttpStatus.PERMANENT_REDIRECT;

/** Every error status Nest knows (a status Nest adds is a compile error below until it has a code). */
export type ErrorStatus = Exclude<HttpStatus, NonErrorStatus>;

/**
 * The code an HttpException (or a body-parser error) of each status is answered with, at that
 * status. The inverse of ERROR_STATUS for the generic codes (test/unit/errors.spec.ts).
 */
export const HTTP_STATUS_CODE: Record<ErrorStatus, ErrorCode> = {
  [HttpStatus.BAD_REQUEST]: ErrorCode.VALIDATION_ERROR,
  [HttpStatus.UNAUTHORIZED]: ErrorCode.UNAUTHORIZED,
  [HttpStatus.PAYMENT_REQUIRED]: ErrorCode.PAYMENT_REQUIRED,
  [HttpStatus.FORBIDDEN]: ErrorCode.FORBIDDEN,
  [HttpStatus.NOT_FOUND]: ErrorCode.NOT_FOUND,
  [HttpStatus.METHOD_NOT_ALLOWED]: ErrorCode.METHOD_NOT_ALLOWED,
  [HttpStatus.NOT_ACCEPTABLE]: ErrorCode.NOT_ACCEPTABLE,
  [HttpStatus.PROXY_AUTHENTICATION_REQUIRED]: ErrorCode.PROXY_AUTHENTICATION_REQUIRED,
  [HttpStatus.REQUEST_TIMEOUT]: ErrorCode.REQUEST_TIMEOUT,
  [HttpStatus.CONFLICT]: ErrorCode.CONFLICT,
  [HttpStatus.GONE]: ErrorCode.GONE,
  [HttpStatus.LENGTH_REQUIRED]: ErrorCode.LENGTH_REQUIRED,
  [HttpStatus.PRECONDITION_FAILED]: ErrorCode.PRECONDITION_FAILED,
  [HttpStatus.PAYLOAD_TOO_LARGE]: ErrorCode.PAYLOAD_TOO_LARGE,
  [HttpStatus.URI_TOO_LONG]: ErrorCode.URI_TOO_LONG,
  [HttpStatus.UNSUPPORTED_MEDIA_TYPE]: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
  [HttpStatus.REQUESTED_RANGE_NOT_SATISFIABLE]: ErrorCode.RANGE_NOT_SATISFIABLE,
  [HttpStatus.EXPECTATION_FAILED]: ErrorCode.EXPECTATION_FAILED,
  [HttpStatus.I_AM_A_TEAPOT]: ErrorCode.I_AM_A_TEAPOT,
  [HttpStatus.MISDIRECTED]: ErrorCode.MISDIRECTED_REQUEST,
  [HttpStatus.UNPROCESSABLE_ENTITY]: ErrorCode.UNPROCESSABLE_ENTITY,
  [HttpStatus.LOCKED]: ErrorCode.LOCKED,
  [HttpStatus.FAILED_DEPENDENCY]: ErrorCode.FAILED_DEPENDENCY,
  [HttpStatus.PRECONDITION_REQUIRED]: ErrorCode.PRECONDITION_REQUIRED,
  [HttpStatus.TOO_MANY_REQUESTS]: ErrorCode.RATE_LIMITED,
  [HttpStatus.UNRECOVERABLE_ERROR]: ErrorCode.UNRECOVERABLE_ERROR,
  [HttpStatus.INTERNAL_SERVER_ERROR]: ErrorCode.INTERNAL_ERROR,
  [HttpStatus.NOT_IMPLEMENTED]: ErrorCode.NOT_IMPLEMENTED,
  [HttpStatus.BAD_GATEWAY]: ErrorCode.BAD_GATEWAY,
  [HttpStatus.SERVICE_UNAVAILABLE]: ErrorCode.SERVICE_UNAVAILABLE,
  [HttpStatus.GATEWAY_TIMEOUT]: ErrorCode.GATEWAY_TIMEOUT,
  [HttpStatus.HTTP_VERSION_NOT_SUPPORTED]: ErrorCode.HTTP_VERSION_NOT_SUPPORTED,
  [HttpStatus.INSUFFICIENT_STORAGE]: ErrorCode.INSUFFICIENT_STORAGE,
  [HttpStatus.LOOP_DETECTED]: ErrorCode.LOOP_DETECTED,
};

/** The code of an error status; a status outside the table (a made-up 499, a 2xx) has none. */
export function codeOfStatus(status: number): ErrorCode | undefined {
  return Object.hasOwn(HTTP_STATUS_CODE, status) ? HTTP_STATUS_CODE[status as ErrorStatus] : undefined;
}

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
