/**
 * Where local agents get their model when the developer configured none: a local OpenAI-compatible server
 * on its usual loopback port. The pool probes once, when it builds the runtime environment, and hands every
 * instance the server it found as `MODEL_BASE_URL` — one probe instead of one per instance, every instance
 * on the same server, and what the start banner reports is what the instances use. With none found, the
 * instances get no model and answer every message with how to configure one (runtime/src/no-model.ts).
 */

export interface ModelServerCandidate {
  name: string;
  /** Base URL including /v1. */
  baseUrl: string;
}

export const LOCAL_MODEL_SERVERS: readonly ModelServerCandidate[] = [
  { name: 'Ollama', baseUrl: 'http://127.0.0.1:11434/v1' },
  { name: 'LM Studio', baseUrl: 'http://127.0.0.1:1234/v1' },
  { name: 'llama.cpp server', baseUrl: 'http://127.0.0.1:8080/v1' },
];

export interface DiscoveredModelServer extends ModelServerCandidate {
  /** The models it lists, in its order. */
  models: string[];
}

/** The model ids of `GET <base>/models`, or null when it does not answer with a non-empty model list. */
async function listModels(baseUrl: string, timeoutMs: number): Promise<string[] | null> {
  try {
    const res = await fetch(`${baseUrl}/models`, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return null;
    const body = (await res.json()) as { data?: unknown };
    if (!Array.isArray(body.data)) return null;
    const ids = body.data
      .map((m) => (m && typeof m === 'object' && 'id' in m ? (m as { id: unknown }).id : null))
      .filter((id): id is string => typeof id === 'string' && id.length > 0);
    return ids.length > 0 ? ids : null;
  } catch {
    return null;
  }
}

/** The first candidate (in order) that answers with a model list; all are probed at once. */
export async function discoverModelServer(
  candidates: readonly ModelServerCandidate[] = LOCAL_MODEL_SERVERS,
  timeoutMs = 800,
): Promise<DiscoveredModelServer | null> {
  const answers = await Promise.all(candidates.map((c) => listModels(c.baseUrl, timeoutMs)));
  const i = answers.findIndex((a) => a !== null);
  const candidate = candidates[i];
  const models = answers[i];
  return candidate && models ? { ...candidate, models } : null;
}

/** One line for the start banner: which model the agents use. */
export function describeModel(
  runtimeEnv: Record<string, string>,
  discovered: DiscoveredModelServer | null,
): string {
  if (discovered) return `${runtimeEnv.MODEL} on ${discovered.name} at ${discovered.baseUrl}`;
  if (runtimeEnv.MODEL_BASE_URL) return `${runtimeEnv.MODEL} at ${runtimeEnv.MODEL_BASE_URL}`;
  if (runtimeEnv.OPENROUTER_API_KEY) return `${runtimeEnv.MODEL} on OpenRouter`;
  return 'none';
}
