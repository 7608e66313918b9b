import { resolve } from 'node:path';
import type { Command } from '../main.ts';
import { numberFlag, parseFlags } from '../args.ts';
import { InvalidParameterError, invalidParameter } from '../../errors.ts';
import { BUILTIN_MODELS, DEFAULT_BUILTIN_MODEL, DEFAULT_MODEL_NAME } from '../../encoder/builtin-models.ts';
import type { ModelLocation, ModelManifest } from '../../encoder/manifest.ts';
import { buildBuiltinModel, modelCacheDir, resolveModel, SHIPPED_MODEL_DIR, shippedModels } from '../../encoder/model-store.ts';
import { readVitOnnx } from '../../encoder/onnx-weights.ts';
import { OrtEncoder } from '../../encoder/ort-encoder.ts';
import { writeSafetensors } from '../../encoder/safetensors.ts';
import { importTimmVit, VIT_ARCHES } from '../../encoder/timm-import.ts';

const usage = [
  `lamina model build-default [--name ${DEFAULT_BUILTIN_MODEL}] [--out dir]   (an UNTRAINED built-in; the default encoder, ${DEFAULT_MODEL_NAME}, needs no build)`,
  '       lamina model import <weights.safetensors> --out dir [--arch auto|vit-tiny|vit-small|vit-base|vit-large|vit-huge|vit-giant]',
  '             [--heads N] [--input-size px] [--mean r,g,b] [--std r,g,b] [--mpp 0.5] [--name s] [--f16] [--untrained] [--ln-eps 1e-6]',
  '             [--license s] [--summary "one line for users"]',
  '       lamina model info <dir|name> [--no-check]',
  '       lamina model export <dir|name> --out weights.safetensors [--f16]',
  '       lamina model list',
].join('\n');

const UNTRAINED_LINE = 'UNTRAINED: fixed-seed random weights. Its embeddings are random features that follow colour and coarse ' +
  'texture, not tissue morphology; use a trained pathology encoder for real work (README, "Bring your own encoder").';

/** Lines describing a model, with the UNTRAINED warning where it applies. */
export function describeModel(loc: ModelLocation): string[] {
  const m: ModelManifest = loc.manifest;
  const grid = m.inputSize / m.patchSize;
  return [
    `model      ${m.name}${m.trained ? '' : '  (UNTRAINED)'}`,
    `location   ${loc.manifestPath}`,
    `onnx       ${loc.onnxPath}`,
    `input      ${m.inputName}: [batch, 3, ${m.inputSize}, ${m.inputSize}] at ${m.mpp} µm/px, mean [${m.mean.join(', ')}], std [${m.std.join(', ')}]`,
    `shape      ${m.architecture}, patch ${m.patchSize} (${grid}×${grid} tokens), width ${m.embeddingDim}` +
      `${m.numLayers ? `, ${m.numLayers} layers` : ''}${m.numHeads ? `, ${m.numHeads} heads` : ''}` +
      `${m.numRegisterTokens ? `, ${m.numRegisterTokens} register tokens` : ''}${m.weightType ? `, ${m.weightType} weights` : ''}`,
    `outputs    embedding: ${m.outputs.embedding} [batch, ${m.embeddingDim}]` +
      (m.outputs.tokens ? `; tokens: ${m.outputs.tokens} [batch, ${grid * grid}, ${m.embeddingDim}]` : ''),
    `trained    ${m.trained ? 'yes' : 'NO'}`,
    ...(m.license ? [`license    ${m.license}`] : []),
    ...(m.notes ? [`notes      ${m.notes}`] : []),
    ...(m.summary ? [`summary    ${m.summary}`] : []),
    ...(m.trained ? [] : [UNTRAINED_LINE]),
  ];
}

function triple(name: string, raw: string | undefined): [number, number, number] | undefined {
  if (raw === undefined) return undefined;
  const parts = raw.split(',').map((s) => Number(s.trim()));
  if (parts.length !== 3 || parts.some((v) => !Number.isFinite(v))) throw invalidParameter(`--${name}`, 'three comma-separated numbers (r,g,b)', raw);
  return parts as [number, number, number];
}

async function buildDefault(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, { out: { type: 'string' }, name: { type: 'string' } }, usage);
  const name = (values.name as string | undefined) ?? DEFAULT_BUILTIN_MODEL;
  if (!BUILTIN_MODELS[name]) throw invalidParameter('--name', `one of ${Object.keys(BUILTIN_MODELS).join(', ')}`, name);
  const out = values.out ? resolve(values.out as string) : undefined;
  const started = performance.now();
  const loc = await buildBuiltinModel(name, out);
  console.log(`built ${name} in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  console.log(describeModel(loc).join('\n'));
  return 0;
}

async function importWeights(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, {
    out: { type: 'string' }, arch: { type: 'string' }, heads: { type: 'string' }, 'input-size': { type: 'string' },
    'patch-size': { type: 'string' }, mean: { type: 'string' }, std: { type: 'string' }, mpp: { type: 'string' },
    name: { type: 'string' }, f16: { type: 'boolean' }, untrained: { type: 'boolean' }, 'ln-eps': { type: 'string' },
    license: { type: 'string' }, summary: { type: 'string' },
  }, usage);
  if (positionals.length !== 1) throw new InvalidParameterError(`Expected one .safetensors file\nUsage: ${usage}`);
  if (!values.out) throw new InvalidParameterError(`Missing required option --out\nUsage: ${usage}`);
  const arch = (values.arch as string | undefined) ?? 'auto';
  if (arch !== 'auto' && !VIT_ARCHES[arch]) throw invalidParameter('--arch', `auto or one of ${Object.keys(VIT_ARCHES).join(', ')}`, arch);
  const loc = await importTimmVit(positionals[0]!, resolve(values.out as string), {
    arch,
    numHeads: values.heads === undefined ? undefined : numberFlag('heads', values.heads as string, undefined, 1, 256),
    inputSize: values['input-size'] === undefined ? undefined : numberFlag('input-size', values['input-size'] as string, undefined, 1, 8192),
    mean: triple('mean', values.mean as string | undefined),
    std: triple('std', values.std as string | undefined),
    mpp: values.mpp === undefined ? undefined : numberFlag('mpp', values.mpp as string, undefined, 0.01, 100, true),
    layerNormEps: values['ln-eps'] === undefined ? undefined : numberFlag('ln-eps', values['ln-eps'] as string, undefined, 0, 1, true),
    name: values.name as string | undefined,
    trained: values.untrained ? false : undefined,
    weightType: values.f16 ? 'float16' : 'float32',
    license: values.license as string | undefined,
    summary: values.summary as string | undefined,
  });
  if (values['patch-size'] !== undefined && Number(values['patch-size']) !== loc.manifest.patchSize) {
    throw new InvalidParameterError(`--patch-size ${values['patch-size']} does not match the weights' patch size ${loc.manifest.patchSize}`);
  }
  // Load it once: the written model must run and match its manifest.
  const encoder = await OrtEncoder.create(loc, { threads: 1 });
  await encoder.close();
  console.log(`imported ${positionals[0]} → ${loc.onnxPath} (checked with onnxruntime)`);
  console.log(describeModel(loc).join('\n'));
  return 0;
}

async function info(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, { 'no-check': { type: 'boolean' } }, usage);
  if (positionals.length !== 1) throw new InvalidParameterError(`Expected one model folder or name\nUsage: ${usage}`);
  const loc = await resolveModel(positionals[0]!);
  console.log(describeModel(loc).join('\n'));
  if (!values['no-check']) {
    const encoder = await OrtEncoder.create(loc, { threads: 1 });
    await encoder.close();
    console.log('check      onnxruntime loads it; inputs and outputs match the manifest');
  }
  return 0;
}

async function exportWeights(argv: string[]): Promise<number> {
  const { values, positionals } = parseFlags(argv, { out: { type: 'string' }, f16: { type: 'boolean' } }, usage);
  if (positionals.length !== 1 || !values.out) throw new InvalidParameterError(`Expected a model and --out\nUsage: ${usage}`);
  const loc = await resolveModel(positionals[0]!);
  const { weights } = await readVitOnnx(loc.onnxPath);
  await writeSafetensors(values.out as string, weights, {
    dtype: values.f16 ? 'F16' : 'F32',
    metadata: {
      format: 'pt', 'lamina.name': loc.manifest.name, 'lamina.trained': String(loc.manifest.trained),
      'lamina.mean': loc.manifest.mean.join(','), 'lamina.std': loc.manifest.std.join(','), 'lamina.mpp': String(loc.manifest.mpp),
      ...(loc.manifest.summary ? { 'lamina.summary': loc.manifest.summary } : {}),
    },
  });
  console.log(`wrote ${weights.size} tensors (timm names) of ${loc.manifest.name} to ${values.out}${loc.manifest.trained ? '' : ' — UNTRAINED weights'}`);
  return 0;
}

async function list(): Promise<number> {
  const mark = (name: string) => (name === DEFAULT_MODEL_NAME ? '[default] ' : '');
  console.log(`shipped in models/ (${SHIPPED_MODEL_DIR}):`);
  for (const { manifest: m } of await shippedModels()) {
    console.log(`  ${m.name.padEnd(30)} ${mark(m.name)}${m.trained ? 'trained' : 'UNTRAINED'}${m.summary ? `: ${m.summary}` : ''}`);
  }
  console.log(`built-in, generated on first use into the model cache ${modelCacheDir()} (set LAMINA_MODEL_DIR to move it):`);
  for (const m of Object.values(BUILTIN_MODELS)) console.log(`  ${m.name.padEnd(30)} ${mark(m.name)}${m.description}`);
  console.log('All built-in models are UNTRAINED (fixed-seed random weights).');
  console.log(`default model: ${DEFAULT_MODEL_NAME}`);
  return 0;
}

export const command: Command = {
  summary: `Encoder models: list them (default: ${DEFAULT_MODEL_NAME}), build an UNTRAINED built-in, import timm safetensors, inspect, export`,
  usage,
  async run(argv) {
    const [sub, ...rest] = argv;
    switch (sub) {
      case 'build-default': return buildDefault(rest);
      case 'import': return importWeights(rest);
      case 'info': return info(rest);
      case 'export': return exportWeights(rest);
      case 'list': return list();
      default: throw new InvalidParameterError(`Expected a subcommand (build-default, import, info, export, list)${sub ? ` but received '${sub}'` : ''}\nUsage: ${usage}`);
    }
  },
};
