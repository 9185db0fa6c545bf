// The live board: render the match state, follow the match's SSE stream, send moves.
// Same-origin requests carry the game's HttpOnly session cookie; unsafe ones the CSRF header.
(function () {
  "use strict";
  const root = document.getElementById("match");
  if (!root) return;
  const mySide = root.dataset.mySide || null;
  const api = root.dataset.api;
  const csrf = root.dataset.csrf;
  const board = document.getElementById("board");
  const statusLine = document.getElementById("status-line");
  const errorLine = document.getElementById("error-line");
  const resign = document.getElementById("resign");
  const offerDraw = document.getElementById("offer-draw");
  const drawOffer = document.getElementById("draw-offer");
  const drawHint = document.getElementById("draw-hint");
  let state = JSON.parse(root.dataset.state);
  let receivedAt = performance.now();
  let pending = false;
  let source = null;
  // Stones on the board when my draw offer last stood: if it is gone and no stone has been
  // dropped since, the opponent declined it (a move would have changed the count).
  let myOfferAt = null;

  const REASONS = {
    four_in_a_row: "four in a row", resign: "resignation", timeout: "time", draw: "a full board",
    agreement: "agreement",
  };

  // Every change of a match raises its version; older states arriving late are ignored.
  function freshness(s) { return s.version; }

  function seatName(side) { return state[side].display_name; }

  function describe() {
    if (state.status === "finished") {
      const reason = REASONS[state.end_reason] || state.end_reason;
      if (state.result === "draw") return "Draw: " + reason + ".";
      if (mySide) {
        return (state.result === mySide ? "You won" : "You lost") + " by " + reason + ".";
      }
      return seatName(state.result) + " won by " + reason + ".";
    }
    if (mySide && state.to_move === mySide) return "Your move: pick a column.";
    if (mySide) return seatName(state.to_move) + " is thinking…";
    return seatName(state.to_move) + " to move.";
  }

  function clockText(ms) {
    const seconds = Math.max(0, Math.ceil(ms / 1000));
    return Math.floor(seconds / 60) + ":" + String(seconds % 60).padStart(2, "0");
  }

  function renderClocks() {
    const elapsed = performance.now() - receivedAt;
    for (const side of ["first", "second"]) {
      let ms = state.clock[side + "_ms"];
      if (state.clock.running === side) ms -= elapsed;
      const clock = document.getElementById("clock-" + side);
      clock.textContent = clockText(ms);
      clock.classList.toggle("low", ms < 15000 && state.status === "active");
      document.getElementById("seat-" + side).classList.toggle(
        "to-move", state.clock.running === side);
    }
  }

  function render() {
    const winning = new Set(state.winning_cells.map(function (c) { return c[0] + ":" + c[1]; }));
    const lastColumn = state.moves.length ? state.moves[state.moves.length - 1] : null;
    const myTurn = state.status === "active" && mySide !== null && state.to_move === mySide;
    board.querySelectorAll(".board-column").forEach(function (columnEl) {
      const column = Number(columnEl.dataset.column);
      let top = null;
      columnEl.querySelectorAll(".cell").forEach(function (cell) {
        const row = Number(cell.dataset.row);
        const value = state.board[5 - row][column];
        cell.classList.toggle("stone-first", value === 1);
        cell.classList.toggle("stone-second", value === 2);
        cell.classList.toggle("winning", winning.has(column + ":" + row));
        if (value && (top === null || row > top)) top = row;
        cell.classList.remove("last-move");
      });
      if (column === lastColumn && top !== null) {
        columnEl.querySelector('.cell[data-row="' + top + '"]').classList.add("last-move");
      }
      columnEl.disabled = !myTurn || pending || state.board[0][column] !== 0;
    });
    statusLine.textContent = describe();
    const over = state.status === "finished";
    if (resign) resign.hidden = over;
    if (drawOffer) {
      // Theirs stands: answer it. Mine stands: say so and keep the offer button away.
      const theirs = !over && state.draw_offer && state.draw_offer !== mySide;
      const mine = !over && state.draw_offer === mySide;
      drawOffer.hidden = !(theirs || mine);
      document.getElementById("draw-text").textContent = theirs
        ? seatName(state.draw_offer) + " offers a draw."
        : "You offered a draw; waiting for the answer.";
      document.getElementById("draw-accept").hidden = !theirs;
      document.getElementById("draw-decline").hidden = !theirs;
      offerDraw.hidden = over || mine || theirs;
      // After an offer, the server refuses another until I have made a few more moves
      // (`draw_cooldown`): the button stays in place, disabled, and the hint says why.
      const wait = over ? 0 : state.draw_cooldown[mySide];
      offerDraw.disabled = pending || wait > 0;
      const declined = !over && !state.draw_offer && myOfferAt === state.moves.length;
      const other = mySide === "first" ? "second" : "first";
      let hint = declined ? seatName(other) + " declined your draw offer. " : "";
      if (wait > 0) {
        hint += "You can offer another draw after " + wait + " more move" +
          (wait === 1 ? "" : "s") + " of yours.";
      }
      drawHint.textContent = hint.trim();
      drawHint.hidden = over || mine || theirs || !hint;
    }
    document.getElementById("replay-link").hidden = !over;
    document.getElementById("lobby-link").hidden = !over;
    root.dataset.status = state.status;
    root.dataset.moves = String(state.moves.length);
    renderClocks();
    if (over && source) { source.close(); source = null; }
  }

  function accept(next) {
    // An older state arriving late, or the same one again (a stream's opening `state`): the
    // turn did not begin anew, so its clock and think time keep counting from the first copy.
    if (freshness(next) <= freshness(state)) return;
    state = next;
    if (mySide && state.draw_offer === mySide) myOfferAt = state.moves.length;
    receivedAt = performance.now();
    render();
  }

  function showError(text) {
    errorLine.textContent = text;
    errorLine.hidden = !text;
  }

  async function post(path, body) {
    pending = true;
    render();
    showError("");
    try {
      const response = await fetch(api + path, {
        method: "POST",
        credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
        body: JSON.stringify(body || {}),
      });
      const data = await response.json().catch(function () { return {}; });
      if (response.ok) {
        // The bot answers an offer in the offer's own request, so the reply may already be
        // the declined state: note the offer here rather than wait to see it stand.
        if (path === "/draw" && mySide) myOfferAt = state.moves.length;
        pending = false;
        accept(data);
        return;
      }
      if (response.status === 401) { window.location.reload(); return; }
      showError(data.detail || "The server refused that move.");
      await refresh();
    } catch (error) {
      showError("Could not reach the server; check your connection.");
    } finally {
      pending = false;
      render();
    }
  }

  async function refresh() {
    const response = await fetch(api, { credentials: "same-origin" });
    if (response.ok) accept(await response.json());
  }

  board.addEventListener("click", function (event) {
    const columnEl = event.target.closest(".board-column");
    if (!columnEl || columnEl.disabled) return;
    if (window.vezeTelemetry) { // fair play: how long the move took since the turn began here
      window.vezeTelemetry.record({
        type: "move", match_id: state.id, column: Number(columnEl.dataset.column),
        think_ms: Math.round(performance.now() - receivedAt),
      });
    }
    post("/moves", { column: Number(columnEl.dataset.column) });
  });
  if (resign) {
    resign.addEventListener("click", function () {
      if (window.confirm("Resign this match?")) post("/resign");
    });
  }

  if (drawOffer) {
    offerDraw.addEventListener("click", function () { post("/draw"); });
    document.getElementById("draw-accept").addEventListener("click", function () {
      post("/draw/accept");
    });
    document.getElementById("draw-decline").addEventListener("click", function () {
      post("/draw/decline");
    });
  }

  function listen() {
    if (!window.EventSource || state.status !== "active") return;
    source = new EventSource(api + "/events");
    for (const name of ["state", "match.started", "match.move", "match.draw", "match.finished"]) {
      source.addEventListener(name, function (event) { accept(JSON.parse(event.data)); });
    }
    // EventSource reconnects by itself; each reconnection starts with the whole state.
  }

  render();
  listen();
  window.setInterval(function () { if (state.status === "active") renderClocks(); }, 250);
})();
