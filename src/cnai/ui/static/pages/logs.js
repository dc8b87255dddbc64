// A pod's log, streamed with ``follow=true`` from the API's log route. The stream is
// reopened from the byte offset already shown whenever the pod's phase changes (a
// pending pod has no output yet; its stream ends at once), so no line shows twice.

import { useEffect, useRef, useState } from "preact/hooks";
import { chunks, podLogPath, request } from "../api.js";
import { ErrorBox, html } from "../components.js";

const MAX_CHARS = 1_000_000; // keep the page responsive on chatty pods: the tail is shown

export function LogView({ pod }) {
  const { namespace, name } = pod.metadata;
  const phase = pod.status.phase;
  const [text, setText] = useState("");
  const [error, setError] = useState(null);
  const [streaming, setStreaming] = useState(false);
  const offset = useRef(0);
  const box = useRef(null);

  useEffect(() => {
    const controller = new AbortController();
    const decoder = new TextDecoder();
    (async () => {
      try {
        const response = await request(podLogPath(namespace, name, { offset: offset.current }), {
          signal: controller.signal,
        });
        setError(null);
        setStreaming(true);
        for await (const chunk of chunks(response)) {
          offset.current += chunk.byteLength;
          const piece = decoder.decode(chunk, { stream: true });
          setText((old) => (old + piece).slice(-MAX_CHARS));
        }
      } catch (err) {
        if (err.name !== "AbortError") setError(err);
      } finally {
        if (!controller.signal.aborted) setStreaming(false);
      }
    })();
    return () => controller.abort();
  }, [namespace, name, phase]);

  useEffect(() => {
    const el = box.current;
    if (el) el.scrollTop = el.scrollHeight;
  }, [text]);

  return html`<div class="log" data-pod=${name} data-streaming=${String(streaming)}>
    <${ErrorBox} error=${error} prefix="cannot read the log: " />
    <pre id="log-text" ref=${box}>${text}</pre>
    <p class="muted small">${streaming ? "following…" : phase === "Pending" ? "waiting for the pod to start" : "end of log"}</p>
  </div>`;
}
