/*
 * Draws the engine's progress events; the engine itself draws nothing. Three forms:
 * - a terminal: a bar per volume and a total, redrawn in place a few times a second;
 * - not a terminal (a pipe, a serial console log): every few seconds a plain line per volume that
 *   has moved since the last lines (a finished volume is not printed again and again);
 * - --json: a "progress" event per volume at most once a second (docs/events.md). An event held
 *   back is not dropped: the newest one of a volume goes out when its second is up, or at stop().
 *   The end of a pass (hashedBytes === totalBytes) and the first event of a phase go out at once.
 * Every other engine event (connected, reconnecting, verified, ...) is logged and, with --json,
 * passed on as an event of its own. A person sees "verified" for the copy pass, for a pass that
 * repaired something, and for the last pass of the run (the final sync after the launch): a pass
 * runs every 2 s in continuous replication, and a line each time would scroll everything else
 * away. The engine does not say which pass is the last, so the quiet verifications of the last
 * completed pass are printed at stop() if no pass started after it.
 */
import type { ReplicationEvent } from "../replication/index.js";
import type { ConsoleOut } from "./console.js";
import { formatBytes, formatDuration, formatRate } from "./format.js";
import type { Log } from "./log.js";

/** A volume's progress as the engine reports it; the total row has no phase of its own. */
type VolumeProgress = Omit<Extract<ReplicationEvent, { type: "progress" }>, "type" | "phase"> & { phase?: string };

interface EngineEvent {
  type: string;
  [field: string]: unknown;
}

export interface ProgressView {
  onEvent(event: EngineEvent): void;
  stop(): void;
}

const REDRAW_MS = 250;
const PLAIN_EVERY_MS = 5_000;
const JSON_EVERY_MS = 1_000;
const BAR_WIDTH = 24;

function bar(fraction: number): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * BAR_WIDTH);
  return `[${"#".repeat(filled)}${"-".repeat(BAR_WIDTH - filled)}]`;
}

function fraction(p: VolumeProgress): number {
  return p.totalBytes > 0 ? p.hashedBytes / p.totalBytes : 1;
}

export function describeVolume(p: VolumeProgress): string {
  const pct = `${(fraction(p) * 100).toFixed(1).padStart(5)}%`;
  const lag = p.lagSeconds !== undefined ? `  lag ${formatDuration(p.lagSeconds)}` : "";
  // Shown at 0 too: in continuous replication "backlog 0 B" says the copy has caught up.
  const backlog = p.backlogBytes !== undefined ? `  backlog ${formatBytes(p.backlogBytes)}` : "";
  return (
    `${p.phase ? `${p.phase} ` : ""}scanned ${formatBytes(p.hashedBytes)}/${formatBytes(p.totalBytes)} ${pct}  sent ${formatBytes(p.sentBytes)}  ` +
    `equal ${formatBytes(p.skippedEqualBytes)}  zero ${formatBytes(p.skippedZeroBytes)}  ${formatRate(p.bytesPerSecond)}  ETA ${formatDuration(p.etaSeconds)}${lag}${backlog}`
  );
}

function isProgress(event: EngineEvent): event is EngineEvent & VolumeProgress {
  return event.type === "progress" && typeof event.volume === "string" && typeof event.totalBytes === "number";
}

/** A volume's --json progress: when and in what phase its last event went out, and the newest held back. */
interface JsonVolume {
  at: number;
  phase?: string;
  held?: Record<string, unknown>;
  timer?: NodeJS.Timeout;
}

export function createProgress(out: ConsoleOut, log: Log, volumes: string[], now: () => number = Date.now): ProgressView {
  const latest = new Map<string, VolumeProgress>();
  const json = new Map<string, JsonVolume>();
  /** Not a terminal: the volumes with progress not printed yet. */
  const updated = new Set<string>();
  const width = Math.max(...volumes.map((v) => v.length), 5);
  let drawnLines = 0;
  let lastPlain = 0;
  let dirty = false;
  /** A pass has completed: the copy pass is over. */
  let pastCopy = false;
  /** "verified" lines not shown: of the pass under way, and of the last completed pass. */
  let quiet: string[] = [];
  let quietOfLastPass: string[] = [];

  const totals = (): VolumeProgress => {
    const all = [...latest.values()];
    const sum = (f: (p: VolumeProgress) => number) => all.reduce((a, p) => a + f(p), 0);
    // A finished volume's last rate is history: only volumes still under way make the total's rate
    // and ETA, and volumes run side by side, so the last of them to finish sets the ETA.
    const underWay = all.filter((p) => p.hashedBytes < p.totalBytes);
    let eta: number | undefined = 0;
    for (const p of underWay) eta = eta === undefined || p.etaSeconds === undefined ? undefined : Math.max(eta, p.etaSeconds);
    return {
      volume: "total",
      totalBytes: sum((p) => p.totalBytes),
      hashedBytes: sum((p) => p.hashedBytes),
      sentBytes: sum((p) => p.sentBytes),
      skippedEqualBytes: sum((p) => p.skippedEqualBytes),
      skippedZeroBytes: sum((p) => p.skippedZeroBytes),
      bytesPerSecond: underWay.reduce((a, p) => a + p.bytesPerSecond, 0),
      etaSeconds: eta,
    };
  };

  const draw = () => {
    if (!dirty) return;
    dirty = false;
    const rows = [...latest.values(), ...(latest.size > 1 ? [totals()] : [])];
    // A serial console reports 0 columns: unknown, so drawn for the narrowest common terminal.
    const columns = out.humanStream.columns || 80;
    const lines = rows.map((p) => `${p.volume.padEnd(width)} ${bar(fraction(p))} ${describeVolume(p)}`.slice(0, Math.max(20, columns - 1)));
    // Move up over the previous drawing and clear each line before writing it again.
    let text = drawnLines > 0 ? `\x1b[${drawnLines}A` : "";
    for (const line of lines) text += `\r\x1b[2K${line}\n`;
    out.humanStream.write(text);
    drawnLines = lines.length;
  };

  /** A line for the person: on a terminal the console puts it above the bars (console.ts). */
  const say = (line: string) => out.say(line);

  const printUpdated = () => {
    for (const [volume, p] of latest) if (updated.has(volume)) out.say(`${volume}: ${describeVolume(p)}`);
    updated.clear();
  };

  const sendJson = (volume: string, fields: Record<string, unknown>) => {
    const sent = json.get(volume);
    clearTimeout(sent?.timer);
    json.set(volume, { at: now(), phase: typeof fields.phase === "string" ? fields.phase : undefined });
    out.event("progress", fields);
  };

  const onJson = (event: EngineEvent & VolumeProgress) => {
    const { type: _type, ...fields } = event;
    const sent = json.get(event.volume);
    const t = now();
    if (!sent || t - sent.at >= JSON_EVERY_MS || event.hashedBytes === event.totalBytes || event.phase !== sent.phase) {
      sendJson(event.volume, fields);
      return;
    }
    // Held, not dropped: passes last about as long as the interval, so a dropped event is often
    // the last of its pass, and a reader would never see the volume at 100%.
    sent.held = fields;
    sent.timer ??= setTimeout(() => {
      if (sent.held) sendJson(event.volume, sent.held);
    }, sent.at + JSON_EVERY_MS - t);
    sent.timer.unref();
  };

  const onVerified = (event: EngineEvent) => {
    const line = describeEvent(event);
    if (!pastCopy || Number(event.mismatchesRepaired ?? 0) > 0) say(line);
    else quiet.push(line);
  };

  const timer = out.isTty && !out.json ? setInterval(draw, REDRAW_MS) : undefined;
  timer?.unref();

  return {
    onEvent(event) {
      if (isProgress(event)) {
        latest.set(event.volume, event);
        // A new pass is under way: the last one was not the run's last.
        quietOfLastPass = [];
        const t = now();
        if (out.json) {
          onJson(event);
        } else if (out.isTty) {
          dirty = true;
        } else {
          updated.add(event.volume);
          if (t - lastPlain >= PLAIN_EVERY_MS) {
            lastPlain = t;
            printUpdated();
          }
        }
        if (t - lastPlain >= PLAIN_EVERY_MS && (out.isTty || out.json)) {
          lastPlain = t;
          log.info(`${event.volume}: ${describeVolume(event)}`);
        }
        return;
      }
      const { type, ...fields } = event;
      log.info(`${type}: ${JSON.stringify(fields)}`);
      out.event(type, fields);
      if (type === "pass-complete") {
        pastCopy = true;
        quietOfLastPass = quiet;
        quiet = [];
      }
      if (out.json) return;
      if (type === "verified") onVerified(event);
      else if (type === "reconnecting" || type === "connected" || type === "throttle") say(describeEvent(event));
    },
    stop() {
      if (timer) {
        clearInterval(timer);
        draw();
      } else if (out.json) {
        for (const [volume, sent] of json) if (sent.held) sendJson(volume, sent.held);
      } else {
        printUpdated();
      }
      for (const line of quietOfLastPass) say(line);
      quietOfLastPass = [];
    },
  };
}

function describeEvent(event: EngineEvent): string {
  switch (event.type) {
    case "connected":
      return `Connected to the agent${typeof event.address === "string" ? ` at ${event.address}` : ""}.`;
    case "reconnecting":
      return `Connection lost (${String(event.reason ?? "unknown")}); reconnecting in ${Math.round(Number(event.delayMs ?? 0) / 1000)} s (attempt ${String(event.attempt ?? "?")}).`;
    case "verified":
      return `${String(event.volume)}: verified${Number(event.mismatchesRepaired ?? 0) > 0 ? `, ${String(event.mismatchesRepaired)} mismatching block(s) repaired` : ""}.`;
    case "throttle":
      return Number(event.mbps) > 0 ? `Bandwidth limit now ${String(event.mbps)} Mbps.` : "Bandwidth limit lifted.";
    default:
      return event.type;
  }
}
