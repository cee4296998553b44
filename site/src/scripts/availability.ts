// Refreshes every availability badge on the page from the site's /api/counts (same origin).
export interface CountsLike {
  idle: number;
  starting: number;
}

export function describe(c: CountsLike | null): { text: string; state: 'ok' | 'empty' | 'down' } {
  if (!c) return { text: 'Availability unknown right now', state: 'down' };
  if (c.idle > 0) return { text: `${c.idle} agent${c.idle === 1 ? '' : 's'} ready now`, state: 'ok' };
  if (c.starting > 0) return { text: `All agents busy — ${c.starting} warming up`, state: 'empty' };
  return { text: 'All agents busy right now', state: 'empty' };
}

export async function fetchCounts(): Promise<CountsLike | null> {
  try {
    const res = await fetch('/api/counts', { headers: { accept: 'application/json' } });
    return res.ok ? ((await res.json()) as CountsLike) : null;
  } catch {
    return null;
  }
}

export function paint(c: CountsLike | null): void {
  const { text, state } = describe(c);
  for (const el of document.querySelectorAll<HTMLElement>('[data-availability]')) {
    el.classList.toggle('empty', state === 'empty');
    el.classList.toggle('down', state === 'down');
    const t = el.querySelector('[data-availability-text]');
    if (t && t.textContent !== text) t.textContent = text;
  }
}

let timer: number | undefined;
export function watchAvailability(everyMs = 10_000): void {
  if (timer !== undefined) return;
  const tick = async () => {
    if (document.visibilityState === 'visible') paint(await fetchCounts());
  };
  timer = window.setInterval(tick, everyMs);
  document.addEventListener('visibilitychange', tick);
}
