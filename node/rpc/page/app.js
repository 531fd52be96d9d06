// The node's status page: read-only, from this node's own JSON-RPC (POST /) and its
// WebSocket (/websocket), no other source. Figures are refreshed on each new block
// header the WebSocket brings (at most every REFRESH_MS), and every POLL_MS without one.
"use strict";

const WINDOW = 100;        // blocks shown in the charts
const LATEST_TXS = 20;
const REFRESH_MS = 2000;
const POLL_MS = 6000;
const $ = (id) => document.getElementById(id);

const state = { blocks: [], txs: [], height: 0, refreshing: false, due: false, lastRefresh: 0, live: false };
let nextId = 0;

async function rpc(method, params = {}) {
  const response = await fetch("/", {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ jsonrpc: "2.0", id: ++nextId, method, params }),
  });
  const answer = await response.json();
  if (answer.error) throw new Error(`${method}: ${answer.error.data || answer.error.message}`);
  return answer.result;
}

function text(id, value) { $(id).textContent = value; }
function short(hex) { return hex.length > 16 ? `${hex.slice(0, 8)}…${hex.slice(-6)}` : hex; }
function cell(row, value, cls) {
  const td = row.insertCell();
  td.textContent = value;
  if (cls) td.className = cls;
  return td;
}
function ago(ms) {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  return s < 90 ? `${s} s ago` : s < 5400 ? `${Math.round(s / 60)} min ago` : `${Math.round(s / 3600)} h ago`;
}

// --- blocks ----------------------------------------------------------------------------

async function loadBlocks(from, to) {
  const metas = [];
  for (let top = to; top >= from; top -= 20) {  // blockchain gives at most 20 a call
    const result = await rpc("blockchain", { minHeight: String(Math.max(from, top - 19)), maxHeight: String(top) });
    metas.push(...result.block_metas);
  }
  for (const meta of metas) {
    const height = Number(meta.header.height);
    if (!state.blocks.some((b) => b.height === height)) {
      state.blocks.push({ height, time: Date.parse(meta.header.time), txs: Number(meta.num_txs) });
    }
  }
  state.blocks.sort((a, b) => a.height - b.height);
  state.blocks = state.blocks.slice(-WINDOW);
  return metas;
}

function bars(svg, scale, values, unit) {
  svg.replaceChildren();
  const ns = "http://www.w3.org/2000/svg";
  const max = Math.max(...values, 0) || 1;
  const width = 600 / WINDOW;
  values.forEach((v, i) => {
    const rect = document.createElementNS(ns, "rect");
    const h = (v / max) * 104;
    rect.setAttribute("x", String(600 - (values.length - i) * width));
    rect.setAttribute("y", String(116 - h));
    rect.setAttribute("width", String(Math.max(1, width - 1)));
    rect.setAttribute("height", String(Math.max(0.5, h)));
    const title = document.createElementNS(ns, "title");
    title.textContent = `${v}${unit}`;
    rect.append(title);
    svg.append(rect);
  });
  text(scale, `top: ${Math.round(max * 100) / 100}${unit}`);
}

function drawCharts() {
  const blocks = state.blocks;
  const intervals = blocks.slice(1).map((b, i) => Math.max(0, (b.time - blocks[i].time) / 1000));
  bars($("intervals"), "intervals-scale", intervals, " s");
  bars($("txs"), "txs-scale", blocks.map((b) => b.txs), " txs");
}

// --- the rest --------------------------------------------------------------------------

function showStatus(status) {
  const sync = status.sync_info;
  text("chain-id", status.node_info.network);
  text("moniker", status.node_info.moniker);
  text("node-id", short(status.node_info.id));
  state.height = Number(sync.latest_block_height);
  text("height", state.height.toLocaleString("en"));
  text("last-block", sync.latest_block_height === "0" ? "no block yet" : `last block ${ago(Date.parse(sync.latest_block_time))}`);
  const target = Number(sync.sync_target_height || 0);
  $("sync-bar").hidden = !target;
  if (target) {
    text("sync", "syncing");
    $("sync-fill").style.width = `${Math.min(100, (100 * state.height) / target)}%`;
    const eta = sync.sync_eta_seconds ? `, ETA ${sync.sync_eta_seconds} s` : "";
    text("sync-detail", `${state.height.toLocaleString("en")} of ${target.toLocaleString("en")}, ${sync.sync_blocks_per_second} blocks/s${eta}`);
  } else {
    text("sync", sync.catching_up ? "catching up" : "caught up");
    text("sync-detail", "");
  }
}

function showValidators(result) {
  const body = $("validators").tBodies[0];
  body.replaceChildren();
  const sorted = [...result.validators].sort((a, b) => Number(b.voting_power) - Number(a.voting_power));
  for (const v of sorted) {
    const row = body.insertRow();
    row.dataset.address = v.address;
    cell(row, v.moniker || "—");
    cell(row, short(v.address), "mono").title = v.address;
    cell(row, Number(v.voting_power).toLocaleString("en"), "num power");
    cell(row, Number(v.epoch_score).toLocaleString("en"), "num");
    cell(row, Number(v.impact).toLocaleString("en"), "num");
    cell(row, v.last_signed_height === "0" ? "—" : Number(v.last_signed_height).toLocaleString("en"), "num");
    cell(row, v.jailed ? `until epoch ${v.jailed_until_epoch}` : "no");
  }
}

function showPeers(net) {
  text("peer-count", net.n_peers);
  const body = $("peers").tBodies[0];
  body.replaceChildren();
  for (const peer of net.peers) {
    const row = body.insertRow();
    cell(row, short(peer.node_info.id), "mono").title = peer.node_info.id;
    cell(row, peer.remote_ip || "—", "mono");
    cell(row, peer.is_outbound ? "outbound" : "inbound");
  }
}

function showTxs() {
  const body = $("latest-txs").tBodies[0];
  body.replaceChildren();
  for (const tx of state.txs) {
    const row = body.insertRow();
    cell(row, short(tx.hash), "mono").title = tx.hash;
    cell(row, Number(tx.height).toLocaleString("en"), "num");
    cell(row, tx.code === 0 ? "ok" : `code ${tx.code}`);
  }
}

function addTxs(found) {
  for (const tx of found) {
    if (!state.txs.some((t) => t.hash === tx.hash)) state.txs.push(tx);
  }
  state.txs.sort((a, b) => b.height - a.height || b.index - a.index);
  state.txs = state.txs.slice(0, LATEST_TXS);
  showTxs();
}

async function loadTxs(metas) {
  const withTxs = metas.filter((m) => Number(m.num_txs) > 0)
    .map((m) => Number(m.header.height)).sort((a, b) => b - a);
  let count = state.txs.length;
  for (const height of withTxs) {
    if (count >= LATEST_TXS) break;
    const result = await rpc("tx_search", { query: `tx.height=${height}`, per_page: String(LATEST_TXS) });
    addTxs(result.txs.map((t) => ({ hash: t.hash, height: Number(t.height), index: t.index, code: t.tx_result.code })));
    count += result.txs.length;
  }
}

async function refresh() {
  if (state.refreshing) { state.due = true; return; }
  state.refreshing = true;
  state.lastRefresh = Date.now();
  try {
    const before = state.height;
    showStatus(await rpc("status"));
    if (state.height > before) {
      const metas = await loadBlocks(Math.max(1, before + 1, state.height - WINDOW + 1), state.height);
      drawCharts();
      await loadTxs(metas);
    }
    showValidators(await rpc("bizra_validators"));
    const mempool = await rpc("num_unconfirmed_txs");
    text("mempool", Number(mempool.n_txs).toLocaleString("en"));
    text("mempool-bytes", `${Number(mempool.total_bytes).toLocaleString("en")} bytes`);
    showPeers(await rpc("net_info"));
  } catch (error) {
    text("live", `error: ${error.message}`);
  } finally {
    state.refreshing = false;
    if (state.due) { state.due = false; setTimeout(refresh, REFRESH_MS); }
  }
}

function soon() {
  const wait = REFRESH_MS - (Date.now() - state.lastRefresh);
  if (wait <= 0) refresh(); else if (!state.due) { state.due = true; setTimeout(() => { state.due = false; refresh(); }, wait); }
}

function connect(delay) {
  const socket = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/websocket`);
  socket.onopen = () => {
    delay = 1000;
    state.live = true;
    $("live").textContent = "live";
    $("live").className = "badge on";
    socket.send(JSON.stringify({ jsonrpc: "2.0", id: "headers", method: "subscribe", params: { query: "tm.event='NewBlockHeader'" } }));
    socket.send(JSON.stringify({ jsonrpc: "2.0", id: "txs", method: "subscribe", params: { query: "tm.event='Tx'" } }));
  };
  socket.onmessage = (message) => {
    const answer = JSON.parse(message.data);
    const data = answer.result && answer.result.data;
    if (!data) return;
    if (data.type === "tendermint/event/NewBlockHeader") soon();
    if (data.type === "tendermint/event/Tx") {
      const result = data.value.TxResult;
      addTxs([{ hash: answer.result.events["tx.hash"][0], height: Number(result.height), index: result.index, code: result.result.code }]);
    }
  };
  socket.onclose = () => {
    state.live = false;
    $("live").textContent = "reconnecting";
    $("live").className = "badge";
    setTimeout(() => connect(Math.min(delay * 2, 30000)), delay);
  };
}

refresh();
connect(1000);
setInterval(() => { if (Date.now() - state.lastRefresh >= POLL_MS) refresh(); }, 1000);
