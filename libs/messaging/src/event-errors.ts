import { ArgumentsHost, Catch } from '@nestjs/common';
import { BaseExceptionFilter } from '@nestjs/core';
import { Observable, throwError } from 'rxjs';

/** The handler can never succeed with this event (bad data, impossible state): park it now. */
export class PermanentEventError extends Error {
  constructor(
    message: string,
    readonly code = 'permanent_failure',
  ) {
    super(message);
    this.name = 'PermanentEventError';
  }
}

/**
 * Nest turns an event handler's error into a generic `{status:'error'}` object; the transport
 * needs the original error to choose between retry and park, so for events this filter passes it
 * through unchanged. HTTP errors (health, metrics) keep Nest's default handling.
 */
@Catch()
export class EventErrorPassthroughFilter extends BaseExceptionFilter {
  override catch(exception: unknown, host: ArgumentsHost): Observable<never> | void {
    if (host.getType() === 'rpc') return throwError(() => exception);
    return super.catch(exception, host);
  }
}
