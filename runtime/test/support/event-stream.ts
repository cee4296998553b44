// Reads a server-sent event stream (the chat page's GET …/events) in the background: each frame with an
// `event:` and a JSON `data:` line goes to `onEvent`, stamped with when it arrived. Ends quietly when the stream
// is closed or aborted.
export interface StreamEvent {
  event: string;
  data: unknown;
  at: number;
}

export function readEvents(body: ReadableStream, onEvent: (e: StreamEvent) => void): void {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  void (async () => {
    let buffer = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buffer += value;
        for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
          const frame = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event = /^event: (.+)$/m.exec(frame)?.[1];
          const data = /^data: (.+)$/m.exec(frame)?.[1];
          if (event && data) onEvent({ event, data: JSON.parse(data), at: Date.now() });
        }
      }
    } catch {
      // closed or aborted
    }
  })();
}
