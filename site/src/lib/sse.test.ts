import { describe, expect, it } from 'vitest';
import { formatSse, SseParser } from './sse';

describe('SseParser', () => {
  it('parses events split across chunks, ignoring comments', () => {
    const p = new SseParser();
    expect(p.push(': hello\n\nevent: step\nda')).toEqual([]);
    expect(p.push('ta: {"a":1}\n\nevent: complete\r\ndata: {"ok":true}\r\n\r\n')).toEqual([
      { event: 'step', data: '{"a":1}' },
      { event: 'complete', data: '{"ok":true}' },
    ]);
  });

  it('round-trips formatSse', () => {
    const p = new SseParser();
    expect(p.push(formatSse('x', { y: 'z\nw' }))).toEqual([{ event: 'x', data: '{"y":"z\\nw"}' }]);
  });
});
