// The page's side of capture_worker.js: a WebSocket look-alike (readyState, send, close, onmessage,
// onclose) so the live view's message handling is the same whether frames go from the page or
// from the worker.
//
// Which browsers get the worker: those with MediaStreamTrackProcessor on the page (Chromium:
// Chrome, Edge, Opera, Brave), whose stream of VideoFrames can be transferred to a worker. Firefox
// and Safari keep the page's own loop (live.js: drawImage, toBlob, send), which their browsers
// slow down when the tab is in the background.
//
// The Content-Security-Policy needs nothing new: a worker from this server is allowed by
// script-src 'self' (worker-src falls back to it), and the worker's own policy (its response's
// header) allows its WebSocket to this server by connect-src 'self'.

export function canCaptureInWorker(stream) {
  return Boolean(stream && stream.getVideoTracks().length && typeof window.MediaStreamTrackProcessor === "function"
    && typeof Worker === "function" && typeof OffscreenCanvas === "function");
}

export class WorkerSocket {
  // url: the session's live socket; track: the camera's or the shared screen's video track;
  // config: {maxWidth, quality, minIntervalMs}.
  constructor(url, track, config) {
    this.url = url;
    this.readyState = WebSocket.CONNECTING;
    this.onmessage = null;
    this.onclose = null;
    this.onsent = null; // a frame left for the server (the page shows the round trip)
    const processor = new MediaStreamTrackProcessor({ track });
    this.worker = new Worker(new URL("./capture_worker.js", import.meta.url), { type: "module" });
    this.worker.onmessage = (event) => this.receive(event.data);
    this.worker.onerror = () => this.closed(1011, "the capture worker failed");
    this.worker.postMessage({ type: "start", url, readable: processor.readable, config }, [processor.readable]);
  }

  send(text) {
    if (typeof text !== "string") throw new TypeError("the capture worker sends the frames itself");
    if (this.readyState === WebSocket.OPEN) this.worker.postMessage({ type: "send", text });
  }

  close() {
    if (this.readyState >= WebSocket.CLOSING) return;
    this.readyState = WebSocket.CLOSING;
    this.worker.postMessage({ type: "close" });
  }

  receive(data) {
    if (data.type === "open") this.readyState = WebSocket.OPEN;
    else if (data.type === "message" && this.onmessage) this.onmessage({ data: data.text });
    else if (data.type === "sent" && this.onsent) this.onsent();
    else if (data.type === "closed") this.closed(data.code, data.reason);
  }

  closed(code, reason) {
    if (this.readyState === WebSocket.CLOSED) return;
    this.readyState = WebSocket.CLOSED;
    this.worker.terminate();
    if (this.onclose) this.onclose({ code, reason });
  }
}
