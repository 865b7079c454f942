/**
 * @module ai/analysis_schema — the answer a vision model must give: the JSON Schema sent as
 * structured output, and the zod schema that validates and normalises what comes back.
 *
 * The JSON Schema is written by hand, not generated: OpenAI's strict mode accepts only a subset
 * of JSON Schema (no `minLength`/`maxLength`), so length rules live in the zod schema and in the
 * prompt, and this file is the one place that keeps the two in step.
 */
import { z } from "zod";

/** Longest caption stored; a longer one is cut at a word boundary. */
export const MAX_CAPTION_LENGTH = 300;
/** Fewest tags an answer may carry after normalising. */
export const MIN_TAGS = 3;
/** Most tags stored; extra ones are dropped. */
export const MAX_TAGS = 10;
/** Longest tag kept; longer ones are dropped (they are sentences, not tags). */
export const MAX_TAG_LENGTH = 40;

/** Name of the structured-output schema, as the model sees it. */
export const ANALYSIS_SCHEMA_NAME = "image_analysis";

/** Strict-mode JSON Schema of the answer (every property required, no extra ones). */
export const ANALYSIS_JSON_SCHEMA: Record<string, unknown> = {
  type: "object",
  properties: {
    caption: {
      type: "string",
      description:
        `One or two sentences describing the image, at most ${MAX_CAPTION_LENGTH} characters`,
    },
    tags: {
      type: "array",
      description: `${MIN_TAGS} to ${MAX_TAGS} short lowercase keywords, most relevant first`,
      items: { type: "string" },
      minItems: MIN_TAGS,
      maxItems: MAX_TAGS,
    },
    safety: {
      type: "object",
      description: "true when the image shows that kind of content",
      properties: {
        adult: { type: "boolean" },
        violence: { type: "boolean" },
        selfHarm: { type: "boolean" },
      },
      required: ["adult", "violence", "selfHarm"],
      additionalProperties: false,
    },
  },
  required: ["caption", "tags", "safety"],
  additionalProperties: false,
};

/** Trims, lowercases, collapses inner whitespace, drops empty and over-long tags, dedupes, keeps the first {@linkcode MAX_TAGS}. */
export function normaliseTags(tags: readonly string[]): string[] {
  const seen = new Set<string>();
  for (const raw of tags) {
    const tag = raw.trim().toLowerCase().replace(/\s+/g, " ");
    if (tag.length === 0 || tag.length > MAX_TAG_LENGTH) continue;
    seen.add(tag);
    if (seen.size === MAX_TAGS) break;
  }
  return [...seen];
}

/** Collapses whitespace and cuts a caption to {@linkcode MAX_CAPTION_LENGTH} at a word boundary. */
export function normaliseCaption(caption: string): string {
  const text = caption.replace(/\s+/g, " ").trim();
  if (text.length <= MAX_CAPTION_LENGTH) return text;
  const cut = text.slice(0, MAX_CAPTION_LENGTH - 1);
  const space = cut.lastIndexOf(" ");
  return `${(space > MAX_CAPTION_LENGTH / 2 ? cut.slice(0, space) : cut).trimEnd()}…`;
}

/** Validates a parsed answer and returns it normalised (caption cut, tags normalised). */
export const AnalysisAnswerSchema = z.object({
  caption: z.string().transform(normaliseCaption).pipe(
    z.string().min(1, "caption is empty"),
  ),
  tags: z.array(z.string()).transform(normaliseTags).pipe(
    z.array(z.string()).min(MIN_TAGS, `fewer than ${MIN_TAGS} distinct tags`),
  ),
  safety: z.object({
    adult: z.boolean(),
    violence: z.boolean(),
    selfHarm: z.boolean(),
  }),
});

/** Every tag of a model's answer, marked as the model's (`Analysis.tagSources`). */
export function modelTagSources(tags: readonly string[]): Record<string, "model"> {
  return Object.fromEntries(tags.map((tag) => [tag, "model" as const]));
}

/** A validated, normalised answer. */
export type AnalysisAnswer = z.output<typeof AnalysisAnswerSchema>;

/** Outcome of {@linkcode parseAnalysisAnswer}: the answer, or why it is malformed. */
export type ParsedAnswer = { ok: true; answer: AnalysisAnswer } | { ok: false; reason: string };

/**
 * Parses a model's text answer: JSON, then the schema. Never throws.
 *
 * @example
 * const r = parseAnalysisAnswer('{"caption":"A cat","tags":["cat","pet","sofa"],"safety":{...}}');
 * if (!r.ok) console.log(r.reason); // "not JSON: ..." or "tags: fewer than 3 distinct tags"
 */
export function parseAnalysisAnswer(text: string): ParsedAnswer {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: `not JSON: ${(err as Error).message}` };
  }
  const parsed = AnalysisAnswerSchema.safeParse(json);
  if (parsed.success) return { ok: true, answer: parsed.data };
  const issue = parsed.error.issues[0];
  const where = issue.path.length > 0 ? issue.path.join(".") : "answer";
  return { ok: false, reason: `${where}: ${issue.message}` };
}
