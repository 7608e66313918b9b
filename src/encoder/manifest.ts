/**
 * The Lamina model format: an ONNX file plus a JSON manifest that says how to feed it and what
 * it returns. Two layouts: a folder `<dir>/manifest.json` + `<dir>/model.onnx` (the `file` field
 * names the ONNX file inside the folder), or `<name>.onnx` beside `<name>.manifest.json`.
 */
import { readFile, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { NotFoundError, UnprocessableError } from '../errors.ts';

const positiveInt = z.number().int().positive();
const rgbTriple = z.array(z.number().finite()).length(3);

/** zod schema of `manifest.json`; `ModelManifest` is its type. */
export const modelManifestSchema = z.object({
  /** Format marker and version, so other JSON files are refused with a clear message. */
  format: z.literal('lamina-model'),
  formatVersion: z.literal(1),
  name: z.string().min(1).max(200),
  /** ONNX file, relative to the manifest's folder. */
  file: z.string().min(1).max(500),
  /** Informational architecture family ('vit'). */
  architecture: z.string().default('vit'),
  /** Name of the single image input: float32 `[batch, 3, inputSize, inputSize]`, normalised. */
  inputName: z.string().min(1).default('pixels'),
  /** Square input side in pixels. */
  inputSize: positiveInt.max(8192),
  patchSize: positiveInt.max(1024),
  /** Per-channel RGB mean and std on the 0..1 scale: x = (v/255 - mean) / std. */
  mean: rgbTriple,
  std: rgbTriple.refine((s) => s.every((v) => v > 0), 'std must be positive'),
  embeddingDim: positiveInt.max(65536),
  /** Informational. */
  numHeads: positiveInt.optional(),
  numLayers: positiveInt.optional(),
  /** Register tokens between the class token and the patch tokens (informational). */
  numRegisterTokens: z.number().int().min(0).default(0),
  outputs: z.object({
    /** Pooled embedding `[batch, embeddingDim]`. */
    embedding: z.string().min(1),
    /** Per-patch-token features `[batch, (inputSize/patchSize)², embeddingDim]`, when the model gives them. */
    tokens: z.string().min(1).optional(),
  }),
  /** Micrometres per pixel the model expects its input at (0.5 ≈ 20× objective). */
  mpp: z.number().positive().max(100),
  /** False for the built-in fixed-seed encoders: their features are random projections. */
  trained: z.boolean(),
  /** Storage type of the weights in the ONNX file (informational). */
  weightType: z.enum(['float32', 'float16']).optional(),
  license: z.string().optional(),
  notes: z.string().optional(),
  /**
   * One line for the people reading results: what the model is, what it learned from and how far
   * to trust it. Results carry it as `model.note` (the viewer and the CLI show it); untrained
   * models get the fixed UNTRAINED note instead.
   */
  summary: z.string().min(1).max(400).optional(),
  /** For generated models: the PRNG seed that made the weights. */
  seed: z.number().int().optional(),
});

export type ModelManifest = z.infer<typeof modelManifestSchema>;
/** A manifest as written by hand: fields with defaults may be left out. */
export type ModelManifestInput = z.input<typeof modelManifestSchema>;

/** A manifest together with where its ONNX file lies. */
export interface ModelLocation {
  manifest: ModelManifest;
  manifestPath: string;
  onnxPath: string;
}

/** Patch-token grid side (tokens per row) for a manifest. */
export function tokenGridSide(manifest: ModelManifest): number {
  return Math.floor(manifest.inputSize / manifest.patchSize);
}

/** Validates a parsed manifest object; `source` names it in the message. */
export function parseManifest(value: unknown, source: string): ModelManifest {
  const parsed = modelManifestSchema.safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new UnprocessableError(`${source}: not a valid Lamina model manifest: ${issues}`);
  }
  const m = parsed.data;
  if (m.inputSize % m.patchSize !== 0) {
    throw new UnprocessableError(`${source}: inputSize ${m.inputSize} is not a multiple of patchSize ${m.patchSize}`);
  }
  return m;
}

/**
 * Finds and validates the manifest for a model path: a folder holding `manifest.json`, a
 * `manifest.json`/`*.manifest.json` file, or a `<name>.onnx` with `<name>.manifest.json` beside it.
 * @throws NotFoundError when nothing is there, UnprocessableError when the manifest is invalid.
 */
export async function locateModel(path: string): Promise<ModelLocation> {
  const info = await stat(path).catch(() => null);
  if (!info) throw new NotFoundError(`model not found: ${path}`);
  let manifestPath: string;
  if (info.isDirectory()) manifestPath = join(path, 'manifest.json');
  else if (path.endsWith('.json')) manifestPath = path;
  else manifestPath = join(dirname(path), `${basename(path).replace(/\.onnx$/i, '')}.manifest.json`);
  const text = await readFile(manifestPath, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new NotFoundError(`${path}: no model manifest at ${manifestPath} (${err.code ?? err.message}); ` +
      `see README "Bring your own encoder" for how to write one`, { cause: err });
  });
  if (text.length > 1 << 20) throw new UnprocessableError(`${manifestPath}: manifest larger than 1 MiB`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new UnprocessableError(`${manifestPath}: manifest is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  const manifest = parseManifest(json, manifestPath);
  const onnxPath = !info.isDirectory() && !path.endsWith('.json') ? path : join(dirname(manifestPath), manifest.file);
  return { manifest, manifestPath, onnxPath };
}

/** Writes `manifest.json` (validated first) pretty-printed. */
export async function writeManifest(path: string, manifest: ModelManifestInput): Promise<ModelManifest> {
  const checked = parseManifest(manifest, path);
  await writeFile(path, `${JSON.stringify(checked, null, 2)}\n`);
  return checked;
}
