/**
 * @module api/tag_routes — GET /images?tag= (images having every tag asked, newest first,
 * cursor-paginated) and GET /tags (the caller's tags with counts), both served from the tag
 * index (public.image_tags) under the caller's row level security.
 */
import { createRoute, z } from "@hono/zod-openapi";
import { asCaller } from "../auth.ts";
import { ApiError } from "../errors.ts";
import { MAX_TAG_LENGTH, normaliseTags } from "../tags.ts";
import { UUID_PATTERN } from "../uuid.ts";
import type { ApiApp, ApiDeps } from "./context.ts";
import { errorResponses, jsonContent, TaggedImageSchema } from "./schemas.ts";

/** Most tags one GET /images may ask for. */
const MAX_TAGS = 10;

const TagParam = z.string().min(1).max(256)
  // deno-lint-ignore no-control-regex -- control characters are exactly what is refused
  .regex(/^[^\u0000-\u001f\u007f]+$/, "tag must not contain control characters");

const imagesRoute = createRoute({
  method: "get",
  path: "/images",
  summary: "Images having every tag asked (?tag=a&tag=b), newest first, from the tag index",
  request: {
    query: z.object({
      tag: z.union([TagParam, z.array(TagParam).min(1).max(MAX_TAGS)])
        .transform((t) => normaliseTags(Array.isArray(t) ? t : [t]))
        .refine((t) => t.length > 0, "tag must not be blank")
        .openapi({
          description:
            `One or more tags (repeat the parameter); each is trimmed, lower-cased and cut to ${MAX_TAG_LENGTH} characters`,
        }),
      limit: z.coerce.number().int().min(1).max(100).default(50),
      cursor: z.string().max(200).optional().openapi({
        description: "nextCursor of the previous page",
      }),
    }),
  },
  responses: {
    200: jsonContent(
      z.object({
        tag: z.string().openapi({ description: "The first tag asked, normalised" }),
        tags: z.array(z.string()),
        images: z.array(TaggedImageSchema),
        nextCursor: z.string().nullable().openapi({ description: "null on the last page" }),
      }),
      "Images",
    ),
    ...errorResponses(400, 401),
  },
});

const TagCountSchema = z.object({ tag: z.string(), count: z.number().int() }).openapi("TagCount");

const tagsRoute = createRoute({
  method: "get",
  path: "/tags",
  summary: "The caller's tags with how many images carry each, most used first",
  request: {
    query: z.object({ limit: z.coerce.number().int().min(1).max(1000).default(100) }),
  },
  responses: {
    200: jsonContent(z.object({ tags: z.array(TagCountSchema) }), "Tags"),
    ...errorResponses(400, 401),
  },
});

/** A page boundary: the last image's created_at (µs since the epoch) and id. */
export interface Cursor {
  micros: string;
  id: string;
}

/** An opaque cursor of (created_at µs, id), URL-safe base64. */
export function encodeCursor(c: Cursor): string {
  return btoa(`${c.micros}:${c.id}`).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** The cursor {@linkcode encodeCursor} made; 400 for anything else. */
export function decodeCursor(raw: string): Cursor {
  let text = "";
  try {
    text = atob(raw.replaceAll("-", "+").replaceAll("_", "/"));
  } catch { /* refused below */ }
  const m = /^(\d{1,20}):(.+)$/.exec(text);
  if (!m || !UUID_PATTERN.test(m[2])) {
    throw new ApiError(400, "invalid_request", "cursor: not a cursor this API gave");
  }
  return { micros: m[1], id: m[2].toLowerCase() };
}

interface ImageRow {
  id: string;
  task_id: string;
  sha256: string;
  content_type: string;
  width: number | null;
  height: number | null;
  format: string | null;
  analysis: { caption?: string; tags?: string[] } | null;
  created_at: Date;
  micros: string;
}

/** Registers /images and /tags. */
export function registerTagRoutes(app: ApiApp, deps: ApiDeps): void {
  app.openapi(imagesRoute, async (c) => {
    const { tag: tags, limit, cursor } = c.req.valid("query");
    const after = cursor === undefined ? null : decodeCursor(cursor);
    const rows = await asCaller(deps.db, c.get("caller"), (tx) =>
      tx.query<ImageRow>(
        `select im.id, im.task_id, im.sha256, im.content_type, im.width, im.height, im.format,
                im.analysis, im.created_at,
                (extract(epoch from im.created_at) * 1000000)::bigint::text as micros
           from public.images im
          where im.id in (select it.image_id from public.image_tags it
                           where it.tag = any($1::text[])
                           group by it.image_id having count(*) = $2::integer)
            and ($3::bigint is null
                 or (im.created_at, im.id) <
                    ('epoch'::timestamptz + $3::bigint * interval '1 microsecond', $4::uuid))
          order by im.created_at desc, im.id desc
          limit $5::integer`,
        [tags, tags.length, after?.micros ?? null, after?.id ?? null, limit + 1],
      ));
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    return c.json({
      tag: tags[0],
      tags,
      images: page.map((r) => ({
        imageId: r.id,
        taskId: r.task_id,
        sha256: r.sha256,
        contentType: r.content_type,
        width: r.width,
        height: r.height,
        format: r.format,
        caption: r.analysis?.caption ?? null,
        tags: r.analysis?.tags ?? [],
        createdAt: new Date(r.created_at).toISOString(),
      })),
      nextCursor: rows.length > limit && last
        ? encodeCursor({ micros: last.micros, id: last.id })
        : null,
    }, 200);
  });

  app.openapi(tagsRoute, async (c) => {
    const { limit } = c.req.valid("query");
    const rows = await asCaller(
      deps.db,
      c.get("caller"),
      (tx) =>
        tx.query<{ tag: string; count: number }>(
          `select it.tag, count(*)::integer as count from public.image_tags it
          group by it.tag order by count(*) desc, it.tag limit $1::integer`,
          [limit],
        ),
    );
    return c.json({ tags: rows }, 200);
  });
}
