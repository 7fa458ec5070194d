// Quill web chat: conversations kept in localStorage (export / import as JSON), replies streamed from
// /v1/chat/completions (SSE, with usage: token counts and tokens/s under each reply), a stop button, regenerate,
// copy, markdown rendering (markdown.js), settings (system prompt, temperature, max tokens, model, API key; folded
// away until asked for), thumbs up / down sent to /v1/feedback, an empty-state hint and keyboard shortcuts
// (Enter send, Shift+Enter new line, Esc stop, / focus the input, Ctrl+Shift+O new chat, Ctrl+Shift+S settings).
"use strict";
(function () {
  const STORE = "quill.chat.v1", SETTINGS = "quill.settings.v1";
  const $ = (id) => document.getElementById(id);
  const els = {
    list: $("conversations"), messages: $("messages"), input: $("input"), send: $("send"), stop: $("stop"),
    composer: $("composer"), status: $("status"), settings: $("settings"), model: $("model"), system: $("system"),
    temperature: $("temperature"), maxTokens: $("max-tokens"), apiKey: $("api-key"), empty: $("empty"),
    emptyModel: $("empty-model"), toggleSettings: $("toggle-settings"), importFile: $("import-file"),
  };
  let state = load(STORE, { conversations: [], active: null });
  let settings = load(SETTINGS, { system: "", temperature: 0.8, maxTokens: 256, model: "", apiKey: "" });
  let controller = null;

  function load(key, fallback) {
    try { return Object.assign(fallback, JSON.parse(localStorage.getItem(key) || "{}")); } catch (e) { return fallback; }
  }
  function save() { localStorage.setItem(STORE, JSON.stringify(state)); }
  function saveSettings() { localStorage.setItem(SETTINGS, JSON.stringify(settings)); }
  function active() { return state.conversations.find((c) => c.id === state.active) || null; }
  function headers() {
    const h = { "Content-Type": "application/json" };
    if (settings.apiKey) h.Authorization = "Bearer " + settings.apiKey;
    return h;
  }
  function status(text) { els.status.textContent = text || ""; }

  function newConversation() {
    const c = { id: Date.now().toString(36) + Math.random().toString(36).slice(2, 6), title: "New chat", messages: [] };
    state.conversations.unshift(c);
    state.active = c.id;
    save();
    renderAll();
    els.input.focus();
  }

  function renderList() {
    els.list.innerHTML = "";
    for (const c of state.conversations) {
      const li = document.createElement("li");
      li.className = c.id === state.active ? "active" : "";
      const span = document.createElement("span");
      span.textContent = c.title;
      span.onclick = () => { if (!controller) { state.active = c.id; save(); renderAll(); } };
      const del = document.createElement("button");
      del.textContent = "×";
      del.title = "Delete conversation";
      del.onclick = () => {
        if (controller) return;
        state.conversations = state.conversations.filter((x) => x.id !== c.id);
        if (state.active === c.id) state.active = state.conversations.length ? state.conversations[0].id : null;
        save();
        renderAll();
      };
      li.append(span, del);
      els.list.append(li);
    }
  }

  function renderMessage(conv, index) {
    const m = conv.messages[index];
    const div = document.createElement("div");
    div.className = "msg " + m.role + (m.error ? " error" : "");
    div.dataset.index = String(index);
    const body = document.createElement("div");
    body.className = "body";
    if (m.role === "assistant" && !m.error) body.innerHTML = window.QuillMarkdown.render(m.content);
    else body.textContent = m.content;
    div.append(body);
    if (m.role === "assistant" && !m.streaming && m.stats) div.append(stats(m));
    if (m.role === "assistant" && !m.streaming) div.append(actions(conv, index));
    return div;
  }

  function actions(conv, index) {
    const m = conv.messages[index];
    const bar = document.createElement("div");
    bar.className = "actions";
    const button = (cls, text, title, onclick) => {
      const b = document.createElement("button");
      b.type = "button";
      b.className = cls;
      b.textContent = text;
      b.title = title;
      b.onclick = onclick;
      bar.append(b);
      return b;
    };
    button("copy", "Copy", "Copy the reply", () => copy(m.content));
    if (index === conv.messages.length - 1) button("regenerate", "Regenerate", "Write this reply again", () => regenerate(conv));
    if (!m.error) {
      const up = button("thumb-up" + (m.rating === "up" ? " chosen" : ""), "👍", "Good reply", () => rate(conv, index, "up"));
      const down = button("thumb-down" + (m.rating === "down" ? " chosen" : ""), "👎", "Bad reply", () => rate(conv, index, "down"));
      up.setAttribute("aria-pressed", String(m.rating === "up"));
      down.setAttribute("aria-pressed", String(m.rating === "down"));
    }
    return bar;
  }

  function stats(m) {
    const d = document.createElement("div");
    d.className = "stats";
    const s = m.stats;
    const parts = [s.completionTokens + (s.completionTokens === 1 ? " token" : " tokens")];
    if (s.tokensPerSecond != null) parts.push(s.tokensPerSecond.toFixed(1) + " tokens/s");
    if (s.firstTokenMs != null) parts.push(Math.round(s.firstTokenMs) + " ms to first token");
    parts.push("prompt " + s.promptTokens + (s.promptTokens === 1 ? " token" : " tokens"));
    d.textContent = parts.join(" · ");
    return d;
  }

  function renderMessages() {
    els.messages.innerHTML = "";
    const conv = active();
    const empty = !conv || conv.messages.length === 0;
    els.empty.hidden = !empty;
    els.messages.hidden = empty;
    els.emptyModel.textContent = settings.model || "the model";
    if (!conv) return;
    conv.messages.forEach((_, i) => els.messages.append(renderMessage(conv, i)));
    els.messages.scrollTop = els.messages.scrollHeight;
  }

  function renderAll() {
    renderList();
    renderMessages();
  }

  function busy(on) {
    els.send.hidden = on;
    els.stop.hidden = !on;
    els.input.disabled = on;
  }

  async function copy(text) {
    try {
      await navigator.clipboard.writeText(text);
    } catch (e) {
      const t = document.createElement("textarea");
      t.value = text;
      document.body.append(t);
      t.select();
      document.execCommand("copy");
      t.remove();
    }
    status("Copied.");
  }

  function requestMessages(conv, upTo) {
    const msgs = [];
    if (settings.system.trim()) msgs.push({ role: "system", content: settings.system });
    for (const m of conv.messages.slice(0, upTo)) if (!m.error) msgs.push({ role: m.role, content: m.content });
    return msgs;
  }

  async function rate(conv, index, rating) {
    const m = conv.messages[index];
    try {
      const res = await fetch("/v1/feedback", {
        method: "POST", headers: headers(),
        body: JSON.stringify({ model: m.model || settings.model, rating: rating, conversation: conv.id, prompt: requestMessages(conv, index), reply: m.content }),
      });
      if (!res.ok) throw new Error(await errorText(res));
      m.rating = rating;
      save();
      renderMessages();
      status("Thanks for the feedback.");
    } catch (e) {
      status("Feedback failed: " + e.message);
    }
  }

  async function errorText(res) {
    try { const j = await res.json(); return (j.error && j.error.message) || res.statusText; } catch (e) { return res.status + " " + res.statusText; }
  }

  function regenerate(conv) {
    if (controller) return;
    const last = conv.messages[conv.messages.length - 1];
    if (last && last.role === "assistant") conv.messages.pop();
    save();
    renderMessages();
    reply(conv);
  }

  async function send(text) {
    let conv = active();
    if (!conv) { newConversation(); conv = active(); }
    conv.messages.push({ role: "user", content: text });
    if (conv.title === "New chat") conv.title = text.slice(0, 40);
    save();
    renderAll();
    await reply(conv);
  }

  async function reply(conv) {
    const upTo = conv.messages.length;
    const m = { role: "assistant", content: "", model: settings.model, streaming: true };
    conv.messages.push(m);
    const index = conv.messages.length - 1;
    renderMessages();
    const div = els.messages.querySelector('[data-index="' + index + '"] .body');
    controller = new AbortController();
    busy(true);
    status("");
    let pending = false;
    const started = performance.now();
    let first = null, usage = null;
    const paint = () => { pending = false; div.innerHTML = window.QuillMarkdown.render(m.content); els.messages.scrollTop = els.messages.scrollHeight; };
    try {
      const res = await fetch("/v1/chat/completions", {
        method: "POST", headers: headers(), signal: controller.signal,
        body: JSON.stringify({
          model: settings.model, messages: requestMessages(conv, upTo), stream: true, stream_options: { include_usage: true },
          temperature: Number(settings.temperature), max_tokens: Number(settings.maxTokens),
        }),
      });
      if (!res.ok) throw new Error(await errorText(res));
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let nl;
        while ((nl = buffer.indexOf("\n")) >= 0) {
          const line = buffer.slice(0, nl).trim();
          buffer = buffer.slice(nl + 1);
          if (!line.startsWith("data: ") || line === "data: [DONE]") continue;
          const chunk = JSON.parse(line.slice(6));
          if (chunk.error) throw new Error(chunk.error.message);
          if (chunk.usage) usage = chunk.usage;
          const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
          if (delta && delta.content) {
            if (first === null) first = performance.now();
            m.content += delta.content;
            if (!pending) { pending = true; requestAnimationFrame(paint); }
          }
        }
      }
      if (usage) {
        const last = performance.now();
        m.stats = {
          promptTokens: usage.prompt_tokens, completionTokens: usage.completion_tokens,
          firstTokenMs: first === null ? null : first - started,
          // tokens after the first, over the time from the first to the last
          tokensPerSecond: first !== null && usage.completion_tokens > 1 && last > first ? (usage.completion_tokens - 1) / ((last - first) / 1000) : null,
        };
      }
    } catch (e) {
      if (e.name !== "AbortError") {
        if (!m.content) { m.content = e.message; m.error = true; } else status("Error: " + e.message);
      } else status("Stopped.");
    } finally {
      delete m.streaming;
      controller = null;
      busy(false);
      save();
      renderMessages();
      els.input.focus();
    }
  }

  async function loadModels() {
    try {
      const res = await fetch("/v1/models", { headers: headers() });
      if (!res.ok) throw new Error(await errorText(res));
      const data = (await res.json()).data;
      els.model.innerHTML = "";
      for (const m of data) {
        const o = document.createElement("option");
        o.value = o.textContent = m.id;
        els.model.append(o);
      }
      if (!data.some((m) => m.id === settings.model)) settings.model = data.length ? data[0].id : "";
      els.model.value = settings.model;
      els.emptyModel.textContent = settings.model || "the model";
      saveSettings();
    } catch (e) {
      status("Could not list models: " + e.message + " (set the API key in Settings?)");
    }
  }

  function bindSettings() {
    els.system.value = settings.system;
    els.temperature.value = settings.temperature;
    els.maxTokens.value = settings.maxTokens;
    els.apiKey.value = settings.apiKey;
    const update = () => {
      settings.system = els.system.value;
      settings.temperature = els.temperature.value;
      settings.maxTokens = els.maxTokens.value;
      settings.model = els.model.value;
      const keyChanged = settings.apiKey !== els.apiKey.value;
      settings.apiKey = els.apiKey.value;
      saveSettings();
      if (keyChanged) loadModels();
    };
    for (const el of [els.system, els.temperature, els.maxTokens, els.model, els.apiKey]) el.addEventListener("change", update);
    els.toggleSettings.onclick = toggleSettings;
  }

  function toggleSettings() {
    els.settings.hidden = !els.settings.hidden;
    els.toggleSettings.setAttribute("aria-expanded", String(!els.settings.hidden));
    if (!els.settings.hidden) els.model.focus();
  }

  // Export: every conversation as one JSON file. Import: the conversations of such a file are added (a conversation
  // already here, by id, is kept as it is); anything else is refused with a line in the status bar.
  const EXPORT_FORMAT = "quill-chat";
  function exportData() {
    return JSON.stringify({ format: EXPORT_FORMAT, version: 1, exported: new Date().toISOString(), conversations: state.conversations }, null, 2);
  }

  function exportConversations() {
    const data = exportData();
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([data], { type: "application/json" }));
    a.download = "quill-chats-" + new Date().toISOString().slice(0, 10) + ".json";
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
    status("Exported " + state.conversations.length + " conversation(s).");
  }

  function validConversation(c) {
    return c && typeof c === "object" && typeof c.id === "string" && typeof c.title === "string" && Array.isArray(c.messages)
      && c.messages.every((m) => m && typeof m === "object" && (m.role === "user" || m.role === "assistant") && typeof m.content === "string");
  }

  function importConversations(text) {
    let data;
    try { data = JSON.parse(text); } catch (e) { throw new Error("the file is not JSON"); }
    if (!data || data.format !== EXPORT_FORMAT || !Array.isArray(data.conversations)) throw new Error("the file is not a Quill chat export (no \"format\": \"quill-chat\")");
    const bad = data.conversations.findIndex((c) => !validConversation(c));
    if (bad >= 0) throw new Error("conversation " + (bad + 1) + " is not {id, title, messages: [{role: user|assistant, content}]}");
    let added = 0;
    for (const c of data.conversations) {
      if (state.conversations.some((x) => x.id === c.id)) continue;
      const messages = c.messages.map((m) => {
        const copy = { role: m.role, content: m.content };
        if (m.role === "assistant") {
          if (typeof m.model === "string") copy.model = m.model;
          if (m.rating === "up" || m.rating === "down") copy.rating = m.rating;
          if (m.error === true) copy.error = true;
          if (m.stats && typeof m.stats === "object") copy.stats = m.stats;
        }
        return copy;
      });
      state.conversations.push({ id: c.id, title: c.title.slice(0, 80), messages: messages });
      added++;
    }
    if (added && !active()) state.active = state.conversations[0].id;
    save();
    renderAll();
    return added;
  }

  $("export").onclick = exportConversations;
  $("import").onclick = () => { if (!controller) els.importFile.click(); };
  els.importFile.addEventListener("change", async () => {
    const file = els.importFile.files[0];
    els.importFile.value = "";
    if (!file) return;
    try {
      const added = importConversations(await file.text());
      status("Imported " + added + " conversation(s).");
    } catch (e) {
      status("Import failed: " + e.message + ".");
    }
  });
  window.QuillChat = { exportData: exportData, importConversations: importConversations };

  document.addEventListener("keydown", (e) => {
    const key = e.key.toLowerCase();
    if (e.key === "Escape" && controller) { e.preventDefault(); controller.abort(); return; }
    if ((e.ctrlKey || e.metaKey) && e.shiftKey && key === "o") { e.preventDefault(); if (!controller) newConversation(); return; }
    if ((e.ctrlKey || e.metaKey) && e.shiftKey && key === "s") { e.preventDefault(); toggleSettings(); return; }
    const typing = /^(INPUT|TEXTAREA|SELECT)$/.test(document.activeElement && document.activeElement.tagName);
    if (e.key === "/" && !typing && !e.ctrlKey && !e.metaKey && !e.altKey) { e.preventDefault(); els.input.focus(); }
  });

  els.composer.addEventListener("submit", (e) => {
    e.preventDefault();
    const text = els.input.value.trim();
    if (!text || controller) return;
    els.input.value = "";
    send(text);
  });
  els.input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); els.composer.requestSubmit(); }
  });
  els.stop.onclick = () => { if (controller) controller.abort(); };
  $("new-chat").onclick = () => { if (!controller) newConversation(); };

  for (const c of state.conversations) for (const m of c.messages) delete m.streaming;
  bindSettings();
  loadModels();
  if (!active()) newConversation(); else renderAll();
})();
