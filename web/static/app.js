// The live view's page script: renders each document the server streams on
// /events (server-sent events). Data only ever goes into textContent.
"use strict";

function el(tag, attrs, children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) node.setAttribute(key, value);
  for (const child of children || []) {
    node.append(child instanceof Node ? child : document.createTextNode(child === null ? "-" : String(child)));
  }
  return node;
}

function row(cells, attrs) { return el("tr", attrs, cells.map((c) => el("td", c && c.cls ? { class: c.cls } : {}, [c && c.cls ? c.text : c]))); }

function table(headers, rows) {
  return el("table", {}, [el("thead", {}, [el("tr", {}, headers.map((h) => el("th", {}, [h])))]), el("tbody", {}, rows)]);
}

function age(seconds) { return seconds === null ? "no change seen yet" : `changed ${seconds.toFixed(1)} s ago`; }

// The ladder: asks above bids, best prices in the middle, with the reference and
// the execution band's edges placed at their prices.
function ladder(inst) {
  const entries = [];
  for (const a of inst.asks) entries.push({ px: +a.price, node: row(["", "", { cls: "px", text: a.price }, a.qty, a.orders], { class: "ask" + (a.outside_band ? " outside" : "") }) });
  for (const b of inst.bids) entries.push({ px: +b.price, node: row([b.orders, b.qty, { cls: "px", text: b.price }, "", ""], { class: "bid" + (b.outside_band ? " outside" : "") }) });
  const band = inst.bands.execution;
  if (band) {
    entries.push({ px: +band[1], node: row(["", "", band[1], "band high", ""], { class: "band-edge", "data-edge": "high" }) });
    entries.push({ px: +band[0], node: row(["", "", band[0], "band low", ""], { class: "band-edge", "data-edge": "low" }) });
  }
  if (inst.reference !== null) entries.push({ px: +inst.reference, node: row(["", "", inst.reference, "reference", ""], { class: "reference" }) });
  entries.sort((x, y) => y.px - x.px);
  return table(["bid orders", "bid qty", "price", "ask qty", "ask orders"], entries.map((e) => e.node));
}

function trades(inst) {
  if (!inst.trades.length) return el("p", { class: "note" }, ["no trades seen yet"]);
  return table(["time", "price", "qty", "aggressor"], inst.trades.map((t) =>
    row([new Date(t.ts / 1e6).toLocaleTimeString(), { cls: "px", text: t.price }, t.qty, t.side], { class: "trade-row " + t.side })));
}

function instrumentCard(inst) {
  const bands = inst.bands;
  return el("div", { class: "card instrument", "data-symbol": inst.symbol }, [
    el("h3", {}, [inst.symbol]),
    el("div", { class: "meta" }, [`state ${inst.state}${inst.synced ? "" : " (book syncing)"} | reference ${inst.reference ?? "unset"} (${age(inst.reference_age_s)}) | last ${inst.last_trade ?? "-"}`]),
    el("div", { class: "meta" }, [`static band ${bands.static ? bands.static.join(" - ") : "none"} (${inst.band_bps.static} bps) | dynamic ${bands.dynamic ? bands.dynamic.join(" - ") : "none"} (${inst.band_bps.dynamic} bps)`]),
    ladder(inst),
    el("h3", {}, ["recent trades"]),
    trades(inst),
  ]);
}

function chainCard(chain) {
  return el("div", { class: "card chain" }, [el("h3", {}, [chain.underlying]), table(
    ["series", "expiry", "strike", "right", "mark", "last", "open interest", "status"],
    chain.series.map((s) => row([s.symbol, s.expiry, s.strike, s.right, s.mark, s.last_trade, s.open_interest, s.status])))]);
}

function note(text) { return el("p", { class: "note" }, [text]); }

function render(doc) {
  const gw = doc.gateway;
  const status = document.getElementById("gateway");
  status.className = "status " + (gw.reachable ? "up" : "down");
  status.textContent = gw.reachable
    ? `gateway ${gw.endpoint}` + (gw.status ? ` | seq ${gw.status.last_seq} | ${gw.status.sessions} sessions` : "")
    : `GATEWAY UNREACHABLE: ${gw.error}`;
  document.getElementById("instruments").replaceChildren(doc.instruments.length
    ? el("div", { class: "grid" }, doc.instruments.filter((i) => !i.option).map(instrumentCard))
    : note(gw.reachable ? "no instruments" : "no market data while the gateway is unreachable"));
  document.getElementById("chains").replaceChildren(doc.chains.length
    ? el("div", { class: "grid" }, doc.chains.map(chainCard)) : note("no option series listed"));
  const pools = doc.pools;
  document.getElementById("pools").replaceChildren(pools.pools.length
    ? table(Object.keys(pools.pools[0]), pools.pools.map((p) => row(Object.values(p)))) : note(pools.message || "no pools"));
  const st = doc.settlement;
  document.getElementById("batches").replaceChildren(st.batches.length
    ? table(["batch", "records", "settled", "gas used", "fills root"], st.batches.map((b) =>
      row([b.batch_id, b.records, b.settled ? "yes" : "pending", b.gas_used, { cls: "hash", text: b.fills_root }], { class: "batch-row" })))
    : note(st.message || "no batches"));
}

const stream = new EventSource("/events");
stream.addEventListener("state", (event) => {
  render(JSON.parse(event.data));
  const indicator = document.getElementById("stream");
  indicator.className = "status up";
  indicator.textContent = "live " + new Date().toLocaleTimeString();
});
stream.onerror = () => {
  const indicator = document.getElementById("stream");
  indicator.className = "status down";
  indicator.textContent = "web view server unreachable; retrying";
};
