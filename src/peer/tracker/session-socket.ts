import WebSocket from 'ws';
import { SESSION_PATH } from '../../protocol/api.js';

/** The session's WebSocket URL on a tracker whose API is at `httpUrl`. */
export function wsUrl(httpUrl: string): string {
  return httpUrl.replace(/^http/, 'ws') + SESSION_PATH;
}

/** Closes a session's WebSocket for good: cleanly when open, at once when not; later errors ignored. */
export function closeSocket(ws: WebSocket, reason: string): void {
  ws.removeAllListeners('message');
  ws.on('error', () => {});
  if (ws.readyState === WebSocket.OPEN) ws.close(1000, reason);
  else ws.terminate();
}
