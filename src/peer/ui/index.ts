// The web UI of the peer daemon: a page on 127.0.0.1 that runs the control API's typed commands
// and follows the daemon's event stream (see docs/web-ui.md). Its paths are in protocol/ui.ts.
export type { UiFrame } from './frames.js';
export { startUiServer, UI_HOST, type UiServer, type UiServerOptions } from './server.js';
