import { applyDecorators } from '@nestjs/common';
import { ApiQuery } from '@nestjs/swagger';
import type { SchemaObject } from '@nestjs/swagger/dist/interfaces/open-api-spec.interface';
import { z } from 'zod';
import { ERROR_BODY_SHAPE, openApiSchema, openApiSchemas, PROBLEM_SHAPE } from '@keyward/contracts';

/**
 * Intake's request and response shapes: each a zod schema, registered under the name of the
 * OpenAPI component generated from it. Controllers check requests and type answers with these
 * schemas; the document (`buildOpenApiDocument`) takes its components from them.
 */
const SHAPES = z.registry<{ id: string }>();
const BY_ID = new Map<string, z.ZodType>();

export function apiShape<S extends z.ZodType>(id: string, schema: S): S {
  if (BY_ID.has(id)) throw new Error(`Two shapes are named ${id}`);
  SHAPES.add(schema, { id });
  BY_ID.set(id, schema);
  return schema;
}

/** Every registered shape by the name of its component. */
export function apiShapes(): ReadonlyMap<string, z.ZodType> {
  return BY_ID;
}

export const PROBLEM = apiShape('ProblemDto', PROBLEM_SHAPE);
export const ERROR_BODY = apiShape('ErrorBodyDto', ERROR_BODY_SHAPE);

/** The body of a call that takes no fields: none, or `{}`. */
export const NO_FIELDS = z.strictObject({});

/** An ISO 8601 date-time in UTC, as `Date.toISOString()` writes it. */
export const dateTime = () => z.iso.datetime();

/** `?limit=`: a page size from 1 to `max`, `fallback` when not given. */
export function pageLimit(max: number, fallback: number) {
  return z
    .string()
    .regex(/^\d{1,4}$/)
    .transform(Number)
    .pipe(z.number().int().min(1).max(max))
    .default(fallback)
    .meta({ description: `Entries per page, 1–${max}, default ${fallback}.` });
}

/** `{ $ref }` to a registered shape's component, for `@ApiBody({ schema })` and `@ApiResponse({ schema })`. */
export function shapeRef(schema: z.ZodType): { $ref: string } {
  const id = SHAPES.get(schema)?.id;
  if (!id) throw new Error('This schema is not registered with apiShape()');
  return { $ref: `#/components/schemas/${id}` };
}

/** Every registered shape as an OpenAPI component schema. */
export function shapeComponents(): Record<string, SchemaObject> {
  return openApiSchemas(SHAPES);
}

/** One `@ApiQuery` per field of a query schema: its name, whether it is required, its schema and description. */
export function ApiQueryShape(schema: z.ZodObject): MethodDecorator {
  const document = openApiSchema(schema) as { properties: Record<string, SchemaObject>; required?: string[] };
  return applyDecorators(
    ...Object.entries(document.properties).map(([name, { description, ...field }]) => ApiQuery({ name, required: document.required?.includes(name) ?? false, description, schema: field })),
  );
}
