/*
 * The engine end to end without sockets: an agent session over in-memory links (one pair per
 * connection the client opens) and the client's replicateOver, between in-memory disks. Volumes
 * are matched by position: the i-th source is served as /dev/xvd(a+i) and lands on the i-th target.
 * The client's defaults are the tests', not the engine's: batches of 16 leaves (1 MiB) and 4 of them
 * in flight, so a volume of a few MiB makes many batches; no compression, so DATA crosses the
 * links at its own size; three attempts, so a test that cuts a link sees the retry.
 */
import { replicateOver, serveSession, type BlockSink, type BlockSource, type Connect, type EngineOptions, type ReplicationSummary } from "../../src/replication/index.js";
import { linkPair, type Counts, type PairOptions } from "./memory-link.js";

export type Pair = ReturnType<typeof linkPair>;

/** The device name of the i-th volume: /dev/xvda, /dev/xvdb, ... */
const device = (i: number): string => `/dev/xvd${String.fromCharCode(97 + i)}`;

export interface AgentOptions {
  /** Options of every link; a function makes them per link, given the pair they will be on (for a tap that cuts its own link). */
  link?: PairOptions | ((pair: () => Pair) => PairOptions);
  /** Sees each new pair (the first session is 1) before the agent serves it, to keep or wrap its ends. */
  onPair?: (pair: Pair, session: number) => void;
  readBudget?: number;
  log?: (line: string) => void;
}

export interface MemoryAgent {
  readonly sources: readonly BlockSource[];
  connect: Connect;
  /** One per connection so far, in order: their number is the number of sessions. */
  readonly pairs: readonly Pair[];
  /** What crossed all of them. */
  readonly counts: Counts;
  /** Resolves once every session so far has closed (a session whose disk hangs never does). */
  settled(): Promise<void>;
}

/** An agent serving `sources` afresh over a new in-memory link pair for each connection. */
export function memoryAgent(sources: BlockSource | BlockSource[], options: AgentOptions = {}): MemoryAgent {
  const served = [sources].flat();
  const pairs: Pair[] = [];
  const counts: Counts = { toAgent: 0, toClient: 0 };
  const sessions: Promise<unknown>[] = [];
  const volumes = served.map((source, i) => ({ deviceName: device(i), path: "memory", open: async () => source }));
  const connect: Connect = async () => {
    const { link } = options;
    const pair: Pair = linkPair(typeof link === "function" ? link(() => pair) : link, counts);
    pairs.push(pair);
    options.onPair?.(pair, pairs.length);
    sessions.push(serveSession(pair.agent, { volumes, log: options.log ?? (() => undefined), who: "test", readBudget: options.readBudget }));
    return { link: pair.client };
  };
  return { sources: served, connect, pairs, counts, settled: async () => void (await Promise.all(sessions)) };
}

export type ClientOptions = Partial<Omit<EngineOptions, "address" | "reconnect">> & {
  /** Connections in a row that may fail without progress before the run does (default 3). */
  attempts?: number;
  /** The size of the recovery volume, where it is not its source's. */
  recoveryBytes?: number;
  /** Makes the run continuous: asked after every pass, in turn, whether to go on. */
  continueAfter?: (pass: number) => boolean | Promise<boolean>;
};

/** Replicates what `agent` serves onto `targets`: one pass unless `continueAfter` is given. */
export async function replicateFrom(agent: MemoryAgent, targets: BlockSink | BlockSink[], options: ClientOptions = {}): Promise<ReplicationSummary> {
  const { attempts = 3, recoveryBytes, continueAfter, onEvent, ...engine } = options;
  const finish = new AbortController();
  // Asked one pass at a time, and the run ends only after the last answer, so a test that writes
  // to a source between passes has written before the next pass can start.
  let answers = Promise.resolve();
  const volumes = [targets].flat().map((target, i) => ({
    recoveryDevice: device(i),
    localPath: "memory",
    localBytes: target.size,
    recoveryBytes: recoveryBytes ?? agent.sources[i]!.size,
    open: async () => target,
  }));
  const summary = await replicateOver(agent.connect, volumes, {
    address: "memory",
    mode: continueAfter ? "continuous" : "once",
    ...(continueAfter ? { finishSignal: finish.signal, intervalMs: 10 } : {}),
    reconnect: { attempts, baseDelayMs: 1 },
    batchLeaves: 16,
    window: 4,
    compression: false,
    ...engine,
    onEvent: (event) => {
      onEvent?.(event);
      if (event.type !== "pass-complete" || !continueAfter) return;
      answers = answers.then(async () => {
        if (!(await continueAfter(event.pass))) finish.abort();
      });
    },
  });
  await answers;
  return summary;
}

/** `sources` onto `targets` through a new agent, once its sessions are closed too; with what crossed the links. */
export async function replicateMemory(sources: BlockSource | BlockSource[], targets: BlockSink | BlockSink[], options: AgentOptions & ClientOptions = {}): Promise<{ summary: ReplicationSummary; counts: Counts; connections: number }> {
  const { link, onPair, readBudget, log, ...client } = options;
  const agent = memoryAgent(sources, { link, onPair, readBudget, log });
  const summary = await replicateFrom(agent, targets, client);
  await agent.settled();
  return { summary, counts: agent.counts, connections: agent.pairs.length };
}
