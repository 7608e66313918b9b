/**
 * `knnScores` on the faster CPU path for the work at hand, for every caller that scores against a
 * bank (tile batches, the in-slide kNN, reference fitting, token banks). The JS loop runs ~0.75 ns
 * a multiply-add on one core; knn-ort.ts is ~10–25× faster, but opening its session (bank centred
 * and prepacked by ORT) costs ~20 ms + 65 ns per bank float (2-core dev VM, 2026-11-29). A caller
 * scoring batch after batch against one bank would pay that on every call, so the session is kept
 * for the bank (one at a time, closed after a minute unused or when another bank takes its place),
 * and opened only once the JS work spent on that bank, this call included, reaches the cost of
 * opening it (`sessionWork`; ≈ 100 queries plus 3e7 / (bank floats)): never more than about twice
 * the better choice made in hindsight, and a single large call goes to ORT at once. Scores equal
 * `knnScores` to ~1e-15 relative (knn-ort.ts re-ranks its candidates in f64); without
 * onnxruntime-node, the JS loop, silently.
 * Banks are keyed by their `data` array: a bank's entries must not change while it is scored.
 * @example const scores = await knnScoresFast(bank, embeddings, n, 3);
 */
import { knnScores, type MemoryBank, type NearExclusion } from './knn.ts';
import { createOrtKnn, type OrtKnn } from './knn-ort.ts';
import { Lease } from '../util/lease.ts';

/** Fixed part of a session's cost in JS multiply-adds (~20 ms of opening at 0.75 ns each, rounded up). */
const SESSION_BASE_WORK = 3e7;
/** Per bank float (~65 ns of centring and ORT prepacking against 0.75 ns a JS multiply-add, rounded up). */
const SESSION_WORK_PER_FLOAT = 100;
/**
 * Largest bank (floats) given a session: a kept session holds about 2.4× the bank beside it, so a
 * 1.5-GB bank of 10⁶ × 384 would add ~3.6 GB of resident memory; banks past 2^26 floats (256 MiB) stay
 * on the JS loop (or the GPU kNN), bounded by the bank itself.
 */
const MAX_SESSION_FLOATS = 2 ** 26;
/** A per-batch caller's batches may be seconds apart (the CPU encoder): keep the session that long. */
const IDLE_CLOSE_MS = 60_000;

interface Session {
  data: Float32Array;
  dim: number;
  count: number;
  /** null when onnxruntime-node could not be loaded or the session not made: the JS loop. */
  knn: Promise<OrtKnn | null>;
}

let current: Lease<Session> | null = null;
/** JS multiply-adds spent per bank since its last session. */
const jsWork = new WeakMap<Float32Array, number>();

/** JS multiply-adds against `bank` after which its ORT session has paid for itself. */
export function sessionWork(bank: MemoryBank): number {
  return SESSION_BASE_WORK + SESSION_WORK_PER_FLOAT * bank.count * bank.dim;
}

/** As `knnScores(bank, embeddings, count, k, selfIndex, exclude)`, on ORT where that is faster. */
export async function knnScoresFast(
  bank: MemoryBank, embeddings: Float32Array, count: number, k: number, selfIndex?: (i: number) => number, exclude?: NearExclusion,
): Promise<Float64Array> {
  const work = count * bank.count * bank.dim;
  let s = keptFor(bank);
  if (!s) {
    const spent = (jsWork.get(bank.data) ?? 0) + work;
    if (work === 0 || spent < sessionWork(bank) || bank.count * bank.dim > MAX_SESSION_FLOATS) {
      jsWork.set(bank.data, spent);
      return knnScores(bank, embeddings, count, k, selfIndex, exclude);
    }
    jsWork.delete(bank.data);
    s = openSession(bank);
  }
  const opened = s.acquire().knn;
  try {
    const knn = await opened;
    return knn ? await knn.score(embeddings, count, k, selfIndex, exclude) : knnScores(bank, embeddings, count, k, selfIndex, exclude);
  } finally {
    s.release();
  }
}

/** Which path the next `knnScoresFast` call on `bank` of `count` queries takes (tests, benches). */
export function knnPathFor(bank: MemoryBank, count: number): 'ort' | 'js' {
  if (keptFor(bank)) return 'ort';
  const work = count * bank.count * bank.dim;
  return work > 0 && (jsWork.get(bank.data) ?? 0) + work >= sessionWork(bank) && bank.count * bank.dim <= MAX_SESSION_FLOATS ? 'ort' : 'js';
}

/** Closes the kept session now (its memory: about twice the bank's) once its calls finish. */
export async function releaseKnnSession(): Promise<void> {
  const s = current;
  if (!s) return;
  current = null;
  await s.retire();
}

function keptFor(bank: MemoryBank): Lease<Session> | null {
  const s = current?.value;
  return s && s.data === bank.data && s.dim === bank.dim && s.count === bank.count ? current : null;
}

function openSession(bank: MemoryBank): Lease<Session> {
  void current?.retire();
  const s: Lease<Session> = new Lease(
    { data: bank.data, dim: bank.dim, count: bank.count, knn: createOrtKnn(bank).catch(() => null) },
    // an idle timeout retires it from inside the lease: forget it here too
    async ({ knn }) => { if (current === s) current = null; await (await knn)?.close(); },
    { idleMs: IDLE_CLOSE_MS, name: 'the kept ORT kNN session' },
  );
  current = s;
  return s;
}
