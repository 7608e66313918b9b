import { z } from 'zod';
import type { RouteSpec } from './route-table.ts';

const toSchema = (s: z.ZodType, io: 'input' | 'output') => {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(s, { io, unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
};

/** Query and path parameters of an object schema as OpenAPI parameter objects. */
function parametersOf(schema: z.ZodType | undefined, where: 'path' | 'query'): unknown[] {
  if (!schema) return [];
  const js = toSchema(schema, 'input') as { properties?: Record<string, unknown>; required?: string[] };
  return Object.entries(js.properties ?? {}).map(([name, s]) => ({
    name,
    in: where,
    required: where === 'path' || (js.required ?? []).includes(name),
    schema: s,
  }));
}

/**
 * The OpenAPI 3.1 document of the mounted routes, built from the same specs that registered them
 * (zod 4's JSON Schema output is OpenAPI 3.1's schema dialect).
 */
export function openApiDocument(specs: readonly RouteSpec[], version: string): Record<string, unknown> {
  const paths: Record<string, Record<string, unknown>> = {};
  for (const spec of specs) {
    const path = spec.path.replace(/:([A-Za-z_][A-Za-z0-9_]*)/g, '{$1}');
    const op: Record<string, unknown> = {
      summary: spec.summary,
      tags: [spec.tag],
      operationId: `${spec.method}${path.replace(/[{}]/g, '').split(/[/._-]/).map((p) => p.charAt(0).toUpperCase() + p.slice(1)).join('')}`,
      parameters: [...parametersOf(spec.params, 'path'), ...parametersOf(spec.query, 'query')],
      responses: Object.fromEntries(Object.entries(spec.responses).map(([status, r]) => [status, {
        description: r.description,
        content: { [r.contentType ?? 'application/json']: r.schema ? { schema: toSchema(r.schema, 'output') } : {} },
      }])),
    };
    if (spec.body) op.requestBody = { required: true, content: { 'application/json': { schema: toSchema(spec.body, 'input') } } };
    if (spec.streamBody) op.requestBody = { required: true, content: spec.streamBody };
    if (spec.write) op.security = [{ bearer: [] }];
    (paths[path] ??= {})[spec.method] = op;
  }
  return {
    openapi: '3.1.0',
    info: { title: 'Lamina API', version, description: 'Slides, analyses, Deep Zoom tiles and batches. Errors are JSON: {"error": {"code", "message"}}.' },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'Required on write operations when LAMINA_API_TOKEN is set.' } },
      schemas: { Error: toSchema(errorSchema, 'output') },
    },
    paths,
  };
}

/** Every error body. */
export const errorSchema = z.object({ error: z.object({ code: z.string(), message: z.string() }) });
