// A dedicated worker that owns a live session's capture -> encode -> send, so that a page in a
// background tab keeps its frame rate (the clinician spends the session in the video-call window).
//
// What Chromium throttles in a tab that is not in front (measured in headless Chromium 156 with a
// second tab brought to front, or the window minimised; tests/test_serve_background.py): the
// page's rendering (requestAnimationFrame from 60 to ~5/s), the <video> element's frame updates
// (~2/s: drawImage(video) sends the same stale picture again) and canvas.toBlob (~5/s, and with one
// frame in flight the page's loop sent ~1 frame/s). Not throttled there: the page's timers at
// 66 ms, WebSocket events, and everything in a dedicated worker (timers, MediaStreamTrackProcessor
// frames, OffscreenCanvas.convertToBlob, its WebSocket), all at >= 0.9 of the foreground rate. The
// page stays "visible" headless; a desktop Chrome also hides the tab (document.hidden), holds its
// page timers to once a second, and to once a minute after five minutes. A tab that captures keeps
// its renderer's priority (nice 0, the DedicatedWorker thread -8; a blank tab behind gets nice 5).
//
// The page transfers the readable stream of VideoFrames and talks to this worker as if it were the
// WebSocket (worker_socket.js): {type: "send", text} goes to the server as is, and every server
// message comes back as {type: "message", text}. The protocol is the server's
// (server/websocket.py): binary frames are an 8-byte little-endian float64 time (NaN: "now" on the
// server's clock) followed by a JPEG; one frame in flight; at most one frame every
// min_interval_ms; {"type": "heartbeat"} every heartbeat_s of "ready".

const config = { maxWidth: 640, quality: 0.8, minIntervalMs: 66 };
const capture = {
  ws: null, reader: null, latest: null, canvas: null, context: null, heartbeat: null, timer: null,
  ready: false, paused: false, stopped: false, inflight: false, lastSend: -Infinity,
};

self.onmessage = (event) => {
  const message = event.data;
  if (message.type === "start") start(message);
  else if (message.type === "send") send(message.text);
  else if (message.type === "close") close();
};

function start(message) {
  Object.assign(config, message.config || {});
  const ws = new WebSocket(message.url);
  ws.binaryType = "arraybuffer";
  capture.ws = ws;
  ws.onopen = () => self.postMessage({ type: "open" });
  ws.onmessage = (event) => onServerMessage(event.data);
  ws.onclose = (event) => {
    clearInterval(capture.heartbeat);
    capture.stopped = true;
    dropLatest();
    if (capture.reader) capture.reader.cancel().catch(() => {});
    self.postMessage({ type: "closed", code: event.code, reason: event.reason });
  };
  capture.reader = message.readable.getReader();
  readFrames(capture.reader);
}

// Keeps only the newest frame (a camera delivers 15-30/s, the server takes what it can); each
// frame sent is a new picture, never one sent before.
async function readFrames(reader) {
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch {
      return; // the track ended or the socket closed
    }
    if (chunk.done) return;
    if (capture.stopped) {
      chunk.value.close();
      return;
    }
    dropLatest();
    capture.latest = chunk.value;
    pump();
  }
}

function dropLatest() {
  if (capture.latest) capture.latest.close();
  capture.latest = null;
}

function onServerMessage(text) {
  let message = null;
  try {
    message = JSON.parse(text);
  } catch {
    // not ours to judge: the page reports it
  }
  const kind = message && message.type;
  if (kind === "ready") {
    capture.ready = true;
    capture.paused = false; // the server starts every connection unpaused
    clearInterval(capture.heartbeat);
    capture.heartbeat = setInterval(() => sendText(JSON.stringify({ type: "heartbeat" })),
      1000 * (message.heartbeat_s || 20));
  } else if (kind === "result" || kind === "error") {
    capture.inflight = false;
  } else if (kind === "finished") {
    capture.stopped = true;
  }
  self.postMessage({ type: "message", text });
  pump();
}

// A message from the page to the server; pause, resume and stop also govern the frames.
function send(text) {
  let kind = null;
  try {
    kind = JSON.parse(text).type;
  } catch {
    // sent as is: the server answers what it makes of it
  }
  if (kind === "pause") capture.paused = true;
  else if (kind === "resume") capture.paused = false;
  else if (kind === "stop") capture.stopped = true;
  sendText(text);
  pump();
}

function sendText(text) {
  if (capture.ws && capture.ws.readyState === WebSocket.OPEN) capture.ws.send(text);
}

function pump() {
  if (!capture.ready || capture.paused || capture.stopped || capture.inflight || !capture.latest) return;
  if (!capture.ws || capture.ws.readyState !== WebSocket.OPEN) return;
  const wait = config.minIntervalMs - (performance.now() - capture.lastSend);
  if (wait > 0) {
    if (capture.timer === null) capture.timer = setTimeout(() => { capture.timer = null; pump(); }, wait);
    return;
  }
  const frame = capture.latest;
  capture.latest = null;
  capture.inflight = true;
  capture.lastSend = performance.now();
  encodeAndSend(frame).catch(() => {
    capture.inflight = false; // this frame is lost; the next one goes
    pump();
  });
}

async function encodeAndSend(frame) {
  try {
    const width = Math.min(config.maxWidth, frame.displayWidth);
    const height = Math.round((frame.displayHeight * width) / frame.displayWidth);
    if (!capture.canvas) {
      capture.canvas = new OffscreenCanvas(width, height);
      capture.context = capture.canvas.getContext("2d");
    }
    if (capture.canvas.width !== width || capture.canvas.height !== height) {
      capture.canvas.width = width; // a shared window can change size mid-session
      capture.canvas.height = height;
    }
    capture.context.drawImage(frame, 0, 0, width, height);
  } finally {
    frame.close();
  }
  const jpeg = await capture.canvas.convertToBlob({ type: "image/jpeg", quality: config.quality });
  const header = new ArrayBuffer(8);
  new DataView(header).setFloat64(0, NaN, true);
  if (capture.ws.readyState !== WebSocket.OPEN || capture.stopped || capture.paused) {
    capture.inflight = false;
    return;
  }
  capture.ws.send(new Blob([header, jpeg]));
  self.postMessage({ type: "sent" });
}

function close() {
  capture.stopped = true;
  clearInterval(capture.heartbeat);
  clearTimeout(capture.timer);
  dropLatest();
  if (capture.reader) capture.reader.cancel().catch(() => {});
  if (capture.ws && capture.ws.readyState <= WebSocket.OPEN) capture.ws.close();
  else self.postMessage({ type: "closed", code: 1000, reason: "" });
}
