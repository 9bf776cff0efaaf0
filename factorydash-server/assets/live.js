// factorydash: the live protocol over /ws, told to the other scripts as events
// (factorydash:latest, factorydash:board, factorydash:health, factorydash:resync); loaded
// last. What a page subscribes to is what window.factorydash.liveSubscription() gives
// (the board's script: its tiles and rows as board rounds; the device page's: its device's
// latest messages), asked again on a "factorydash:resubscribe" event.
// Agent data is untrusted: only textContent is ever set.
"use strict";
(function () {
  const deviceFilter = document.body.dataset.device || "";
  const emit = (name, detail) => document.dispatchEvent(new CustomEvent(name, { detail }));

  // The live protocol: after a reconnect, ask for what was missed (since=epoch.id); the
  // server sends it, or "resync" when it no longer holds it. Only this page's devices are
  // subscribed to. A silent server (no heartbeat for 40 s) is reconnected to.
  let delay = 500;
  let epoch = null;
  let lastId = 0;
  let watchdog = null;
  function connect() {
    const live = document.getElementById("live");
    const since = epoch === null ? "" : "?since=" + epoch + "." + lastId;
    const ws = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/ws" + since);
    const alive = () => {
      clearTimeout(watchdog);
      watchdog = setTimeout(() => ws.close(), 40000);
    };
    const subscribe = () => {
      if (ws.readyState !== WebSocket.OPEN) return;
      const wanted = window.factorydash.liveSubscription?.() ||
        { type: "subscribe", devices: deviceFilter ? [deviceFilter] : null };
      ws.send(JSON.stringify(wanted));
    };
    ws.onopen = () => {
      delay = 500;
      live.textContent = "live";
      alive();
      subscribe();
      if (epoch !== null) emit("factorydash:reconnected", null);
    };
    document.addEventListener("factorydash:resubscribe", subscribe);
    ws.addEventListener("close", () => document.removeEventListener("factorydash:resubscribe", subscribe));
    ws.onmessage = (ev) => {
      alive();
      const msg = JSON.parse(ev.data);
      if (msg.type === "hello") {
        if (epoch !== null && msg.epoch !== epoch) { lastId = msg.id; }
        epoch = msg.epoch;
        if (lastId === 0) lastId = msg.id;
        return;
      }
      if (typeof msg.id === "number") lastId = msg.id;
      if (msg.type === "board") emit("factorydash:board", msg);
      else if (msg.type === "latest") emit("factorydash:latest", msg);
      else if (msg.type === "health") emit("factorydash:health", msg);
      else if (msg.type === "resync") emit("factorydash:resync", msg);
    };
    ws.onclose = () => {
      clearTimeout(watchdog);
      live.textContent = "reconnecting…";
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    };
  }

  connect();
})();
