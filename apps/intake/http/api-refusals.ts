import { applyDecorators } from '@nestjs/common';
import { ApiResponse } from '@nestjs/swagger';
import { problem, RefusalCode, refusalStatus } from '@keyward/contracts';
import { ERROR_BODY, shapeRef } from './api-shapes';

/**
 * Documents the refusals a route can answer, from the problem table: one OpenAPI response per
 * HTTP status the table gives these codes, listing each code with its message and an example.
 */
export function ApiRefusals(...codes: RefusalCode[]): ClassDecorator & MethodDecorator {
  const byStatus = new Map<number, RefusalCode[]>();
  for (const code of codes) byStatus.set(refusalStatus(code), [...(byStatus.get(refusalStatus(code)) ?? []), code]);
  return applyDecorators(
    ...[...byStatus].map(([status, group]) =>
      ApiResponse({
        status,
        schema: shapeRef(ERROR_BODY),
        description: group.map((code) => `\`${code}\`: ${problem(code).message}`).join(' '),
        examples: Object.fromEntries(group.map((code) => [code, { summary: code, value: { error: problem(code) } }])),
      }),
    ),
  );
}
