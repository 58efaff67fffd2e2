// The chat page: one WebSocket to the room, history on join, reconnect with back-off.
"use strict";
(function () {
  const root = document.getElementById("chat");
  const log = document.getElementById("chat-log");
  const status = document.getElementById("status");
  const form = document.getElementById("chat-form");
  const input = document.getElementById("chat-input");
  const sendButton = document.getElementById("chat-send");
  const CLOSE_FORBIDDEN = 4003;
  let socket = null;
  let attempts = 0;

  function setStatus(state, text) {
    status.dataset.state = state;
    status.textContent = text;
  }

  function setEnabled(enabled) {
    input.disabled = !enabled;
    sendButton.disabled = !enabled;
    if (enabled) input.focus();
  }

  function showEmpty() {
    const item = document.createElement("li");
    item.className = "empty";
    item.textContent = `No messages in ${root.dataset.roomTitle} yet. Say hello!`;
    log.append(item);
  }

  function show(message) {
    log.querySelector(".empty")?.remove();
    const item = document.createElement("li");
    item.className = "message";
    const user = document.createElement("span");
    user.className = "user";
    user.textContent = message.user;
    const text = document.createElement("span");
    text.className = "text";
    text.textContent = message.text;
    const time = document.createElement("time");
    time.dateTime = message.created;
    time.textContent = new Date(message.created).toLocaleTimeString();
    item.append(user, text, time);
    log.append(item);
    log.scrollTop = log.scrollHeight;
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}${root.dataset.wsPath}`);
    setStatus("connecting", "connecting…");
    socket.onopen = () => {
      attempts = 0;
      setStatus("connected", "connected");
      setEnabled(true);
    };
    socket.onmessage = (event) => {
      const data = JSON.parse(event.data);
      if (data.type === "history") {
        log.replaceChildren();  // a reconnect brings the history again
        data.messages.forEach(show);
        if (data.messages.length === 0) showEmpty();
      } else if (data.type === "message") {
        show(data);
      } else if (data.type === "error") {
        setStatus("connected", `error: ${data.error}`);
      }
    };
    socket.onclose = (event) => {
      setEnabled(false);
      if (event.code === CLOSE_FORBIDDEN) {
        setStatus("refused", "refused: this chat is for staff only");
        return;
      }
      const delay = Math.min(5000, 250 * 2 ** attempts);
      attempts += 1;
      setStatus("disconnected", `disconnected, retrying in ${(delay / 1000).toFixed(1)} s`);
      setTimeout(connect, delay);
    };
  }

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || !socket || socket.readyState !== WebSocket.OPEN) return;
    socket.send(JSON.stringify({ message: text }));
    input.value = "";
  });

  connect();
})();
