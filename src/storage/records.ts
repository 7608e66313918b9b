import { NotFoundError } from '../errors.ts';
import { readJsonIfExists, writeJson, type Storage } from './storage.ts';

/** A stored slide: its file, checksum and what the reader found. Immutable once written. */
export interface SlideRecord {
  id: string;
  /** Original file name, sanitised. */
  name: string;
  /** Storage key of the slide file. */
  fileKey: string;
  size: number;
  sha256: string;
  format: string;
  vendor: string;
  width: number;
  height: number;
  levels: { width: number; height: number; downsample: number }[];
  mpp: { x: number; y: number } | null;
  objectivePower: number | null;
  createdAt: string;
}

export type AnalysisState = 'queued' | 'planning' | 'running' | 'aggregating' | 'completed' | 'failed' | 'cancelled';

export const TERMINAL_STATES: readonly AnalysisState[] = ['completed', 'failed', 'cancelled'];

/** One analysis of one slide with one parameter set. Its id is derived from both (see analysisIdFor). */
export interface AnalysisRecord {
  id: string;
  slideId: string;
  /** Pipeline parameters after validation (every default filled in). */
  params: Record<string, unknown>;
  state: AnalysisState;
  /** Why it failed or was cancelled. */
  reason?: string;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
  tilesTotal?: number;
  batchesTotal?: number;
  /** Slide-level score from result.json, once completed. */
  score?: number | null;
  /** Seconds per stage, filled by the workers. */
  timings?: Record<string, number>;
  /** How many times it was (re)queued. */
  runs: number;
}

/** Slides queued together: the batch's own record; progress is derived from its analyses. */
export interface BatchRecord {
  id: string;
  createdAt: string;
  params: Record<string, unknown>;
  items: { slideId: string; analysisId: string | null; name?: string; reason?: string }[];
}

/** Storage keys in one place. */
export const keys = {
  slide: (id: string) => `slides/${id}/slide.json`,
  slideDir: (id: string) => `slides/${id}`,
  slideFile: (id: string, ext: string) => `slides/${id}/slide${ext}`,
  checksum: (sha256: string) => `checksums/${sha256}`,
  analysis: (id: string) => `analyses/${id}/analysis.json`,
  analysisDir: (id: string) => `analyses/${id}`,
  /** A file of the analysis result folder (result.json, heatmap.png, …). */
  analysisFile: (id: string, name: string) => `analyses/${id}/result/${name}`,
  resultDir: (id: string) => `analyses/${id}/result`,
  /** Per run, so a slow job of an earlier run can never mix into a re-queued one. */
  plan: (id: string, run: number) => `analyses/${id}/run-${run}/plan.json`,
  /** The encoder's ModelInfo, written by batch workers for the aggregate step. */
  analysisModel: (id: string, run: number) => `analyses/${id}/run-${run}/model.json`,
  batchOutput: (id: string, run: number, index: number) => `analyses/${id}/run-${run}/batches/${String(index).padStart(6, '0')}.bin`,
  batchOutputDir: (id: string, run: number) => `analyses/${id}/run-${run}/batches`,
  runDir: (id: string, run: number) => `analyses/${id}/run-${run}`,
  batch: (id: string) => `batches/${id}.json`,
};

/** Typed access to the records above over any Storage. */
export class Records {
  constructor(readonly storage: Storage) {}

  async slide(id: string): Promise<SlideRecord> {
    const r = await this.findSlide(id);
    if (!r) throw new NotFoundError(`slide ${id} not found`);
    return r;
  }

  findSlide(id: string): Promise<SlideRecord | null> {
    return isId(id) ? readJsonIfExists<SlideRecord>(this.storage, keys.slide(id)) : Promise.resolve(null);
  }

  async listSlides(): Promise<SlideRecord[]> {
    const ids = await this.storage.list('slides');
    const all = await Promise.all(ids.map((id) => this.findSlide(id)));
    return all.filter((s): s is SlideRecord => s !== null).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async analysis(id: string): Promise<AnalysisRecord> {
    const r = await this.findAnalysis(id);
    if (!r) throw new NotFoundError(`analysis ${id} not found`);
    return r;
  }

  findAnalysis(id: string): Promise<AnalysisRecord | null> {
    return isId(id) ? readJsonIfExists<AnalysisRecord>(this.storage, keys.analysis(id)) : Promise.resolve(null);
  }

  saveAnalysis(record: AnalysisRecord): Promise<void> {
    return writeJson(this.storage, keys.analysis(record.id), record);
  }

  /**
   * Read-modify-write of an analysis record. A terminal state is only left by an explicit re-queue
   * (`allowFromTerminal`), so a late batch of a cancelled analysis cannot mark it running again.
   */
  async updateAnalysis(id: string, change: (r: AnalysisRecord) => void, allowFromTerminal = false): Promise<AnalysisRecord> {
    const r = await this.analysis(id);
    if (TERMINAL_STATES.includes(r.state) && !allowFromTerminal) return r;
    change(r);
    await this.saveAnalysis(r);
    return r;
  }

  async listAnalyses(slideId?: string): Promise<AnalysisRecord[]> {
    const ids = await this.storage.list('analyses');
    const all = await Promise.all(ids.map((id) => this.findAnalysis(id)));
    return all
      .filter((a): a is AnalysisRecord => a !== null && (!slideId || a.slideId === slideId))
      .sort((a, b) => a.createdAt.localeCompare(b.createdAt));
  }

  async batch(id: string): Promise<BatchRecord> {
    const r = isId(id) ? await readJsonIfExists<BatchRecord>(this.storage, keys.batch(id)) : null;
    if (!r) throw new NotFoundError(`batch ${id} not found`);
    return r;
  }

  saveBatch(record: BatchRecord): Promise<void> {
    return writeJson(this.storage, keys.batch(record.id), record);
  }
}

/** Ids are lowercase hex or base36 tokens; anything else is not ours (and never reaches the disk). */
export function isId(id: string): boolean {
  return /^[a-z0-9]{6,64}$/.test(id);
}
