// Open Graph card (1200×630 PNG) for a template: satori lays out the card as SVG, resvg rasterizes it.
// The font ships in @fontsource/inter (read from disk), so rendering needs no network.
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { Resvg } from '@resvg/resvg-js';
import satori from 'satori';
import type { TemplateSummary } from './types';

const require = createRequire(import.meta.url);
let fonts: Promise<{ name: string; data: Buffer; weight: 400 | 700; style: 'normal' }[]> | undefined;

function loadFonts() {
  fonts ??= Promise.all(
    ([400, 700] as const).map(async (weight) => ({
      name: 'Inter',
      weight,
      style: 'normal' as const,
      data: await readFile(require.resolve(`@fontsource/inter/files/inter-latin-${weight}-normal.woff`)),
    })),
  );
  return fonts;
}

type Node = { type: string; props: Record<string, unknown> & { children?: unknown } };
const h = (type: string, style: Record<string, unknown>, children?: unknown): Node => ({
  type,
  props: { style, children },
});

const cache = new Map<string, Buffer>();

export async function renderOgPng(t: TemplateSummary): Promise<Buffer> {
  const key = JSON.stringify(t);
  const hit = cache.get(key);
  if (hit) return hit;
  const card = h(
    'div',
    {
      // satori sizes boxes content-box: 1056×486 plus 72 px padding = 1200×630.
      width: 1056,
      height: 486,
      display: 'flex',
      flexDirection: 'column',
      justifyContent: 'space-between',
      padding: '72px',
      background: 'linear-gradient(135deg, #0f172a 0%, #1e3a8a 100%)',
      color: '#f8fafc',
      fontFamily: 'Inter',
    },
    [
      h(
        'div',
        { display: 'flex', fontSize: 30, color: '#93c5fd', fontWeight: 700 },
        `${t.category} · Convos agent`,
      ),
      h('div', { display: 'flex', flexDirection: 'column' }, [
        h('div', { fontSize: 84, fontWeight: 700, lineHeight: 1.1, maxWidth: 1056 }, t.name),
        h(
          'div',
          { fontSize: 36, marginTop: 28, color: '#e2e8f0', lineHeight: 1.35, maxWidth: 1056 },
          t.description,
        ),
      ]),
      h('div', { display: 'flex', alignItems: 'center', justifyContent: 'space-between' }, [
        h(
          'div',
          { display: 'flex', gap: 14 },
          t.skills.slice(0, 4).map((s) =>
            h(
              'div',
              {
                display: 'flex',
                fontSize: 26,
                padding: '8px 20px',
                borderRadius: 999,
                background: 'rgba(255,255,255,0.14)',
              },
              s,
            ),
          ),
        ),
        h('div', { display: 'flex', fontSize: 28, color: '#cbd5e1' }, 'Private, end-to-end encrypted chat'),
      ]),
    ],
  );
  // satori's types expect ReactNode; our plain element objects have the same shape.
  const svg = await satori(card as unknown as Parameters<typeof satori>[0], {
    width: 1200,
    height: 630,
    fonts: await loadFonts(),
  });
  const png = new Resvg(svg, { fitTo: { mode: 'width', value: 1200 } }).render().asPng();
  if (cache.size > 200) cache.clear();
  cache.set(key, png);
  return png;
}
