import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { KeywardLogger, Metrics } from '@keyward/observability';

/** The route as declared (`/v1/tenants/:tenantId/pleo/key`): never a tenant id, never a query. */
export function routeTemplate(req: Request): string {
  const path = (req as { route?: { path?: unknown } }).route?.path;
  return typeof path === 'string' ? path : 'unmatched';
}

const QUIET_ROUTES = new Set(['/health/live', '/health/ready', '/metrics']);

/**
 * One access log line and the request metrics per answer, labelled by route template and
 * status. The URL is never logged: its query string may carry what a caller should not have sent.
 */
export function observeRequests(logger: KeywardLogger, metrics: Metrics): RequestHandler {
  const requests = metrics.counter('keyward_http_requests_total', 'HTTP requests answered, by route template and status', ['method', 'route', 'status']);
  const duration = metrics.histogram(
    'keyward_http_request_duration_seconds',
    'Time to answer an HTTP request, by route template',
    ['method', 'route'],
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  );
  return (req: Request, res: Response, next: NextFunction) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const route = routeTemplate(req);
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      requests.inc({ method: req.method, route, status: String(res.statusCode) });
      duration.observe({ method: req.method, route }, seconds);
      const fields = {
        method: req.method,
        route,
        status: res.statusCode,
        durationMs: Math.round(seconds * 1000),
        correlationId: res.getHeader('X-Correlation-Id'),
      };
      if (QUIET_ROUTES.has(route)) logger.debug('HTTP request', fields);
      else logger.info('HTTP request', fields);
    });
    next();
  };
}
