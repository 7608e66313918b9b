/**
 * Progress display for long CLI stages on stderr: a redrawn bar on a TTY (tiles done, tiles/s,
 * ETA), plain lines at most every few seconds otherwise (logs, CI).
 */
import type { StageContext, StageProgress } from '../pipeline/stage.ts';

/** Seconds as m:ss or h:mm:ss. */
export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${String(r).padStart(2, '0')}` : `${m}:${String(r).padStart(2, '0')}`;
}

/** One progress line: `encode [####------] 1200/5000 tiles  84.1 tiles/s  ETA 0:45`. */
export function progressLine(update: StageProgress, elapsedSeconds: number, width = 24): string {
  const fraction = update.total > 0 ? Math.min(1, update.done / update.total) : 0;
  const filled = Math.round(fraction * width);
  const rate = elapsedSeconds > 0 ? update.done / elapsedSeconds : 0;
  const eta = rate > 0 ? (update.total - update.done) / rate : NaN;
  return `${update.stage.padEnd(7)} [${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${update.done}/${update.total} tiles  ${rate.toFixed(1)} tiles/s  ETA ${formatDuration(eta)}`;
}

/** A StageContext that draws progress on `stream` (stderr by default). */
export function cliContext(signal: AbortSignal, stream: NodeJS.WriteStream = process.stderr): StageContext & { finish(): void } {
  const tty = Boolean(stream.isTTY);
  let stageStart = performance.now();
  let currentStage = '';
  let lastPrint = 0;
  let drawn = false;
  const clear = () => {
    if (tty && drawn) stream.write('\r\x1b[2K');
    drawn = false;
  };
  return {
    signal,
    progress(update) {
      if (update.stage !== currentStage) {
        currentStage = update.stage;
        stageStart = performance.now();
      }
      if (update.stage !== 'encode') return; // other stages are short; their start is logged
      const now = performance.now();
      const line = progressLine(update, (now - stageStart) / 1000);
      if (tty) {
        if (now - lastPrint < 100 && update.done < update.total) return;
        stream.write(`\r\x1b[2K${line}`);
        drawn = true;
      } else {
        if (now - lastPrint < 5000 && update.done < update.total && update.done > 0) return;
        stream.write(`${line}\n`);
      }
      lastPrint = now;
    },
    log: {
      info(message) { clear(); stream.write(`${message}\n`); },
      warn(message) { clear(); stream.write(`warning: ${message}\n`); },
    },
    finish() {
      if (tty && drawn) stream.write('\n');
      drawn = false;
    },
  };
}

/**
 * Runs `body` with an AbortSignal tied to Ctrl-C (SIGINT) and SIGTERM: the first signal asks for a
 * clean stop, a second one exits at once.
 */
export async function withInterrupt<T>(body: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const onSignal = (name: NodeJS.Signals) => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write(`\n${name}: stopping after the current batch (again to quit at once)\n`);
    controller.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  try {
    return await body(controller.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
