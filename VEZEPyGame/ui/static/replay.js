// Replay: rebuild the board move by move from the recorded moves.
(function () {
  "use strict";
  const root = document.getElementById("replay");
  if (!root) return;
  const moves = JSON.parse(root.dataset.moves);
  const final = JSON.parse(root.dataset.state);
  const position = document.getElementById("replay-position");
  let ply = moves.length;

  function clockText(ms) {
    const seconds = Math.max(0, Math.ceil(ms / 1000));
    return Math.floor(seconds / 60) + ":" + String(seconds % 60).padStart(2, "0");
  }

  function render() {
    const grid = Array.from({ length: 7 }, function () { return []; });
    for (let i = 0; i < ply; i++) grid[moves[i].column].push(moves[i].side);
    document.querySelectorAll("#board .board-column").forEach(function (columnEl) {
      const column = Number(columnEl.dataset.column);
      columnEl.querySelectorAll(".cell").forEach(function (cell) {
        const side = grid[column][Number(cell.dataset.row)];
        cell.classList.toggle("stone-first", side === "first");
        cell.classList.toggle("stone-second", side === "second");
        if (ply !== moves.length) cell.classList.remove("winning");
        cell.classList.toggle("last-move", ply > 0 && moves[ply - 1].column === column &&
          Number(cell.dataset.row) === grid[column].length - 1);
      });
    });
    // Each side's clock as it stood after its latest move up to this point.
    for (const side of ["first", "second"]) {
      let ms = final.clock.initial_ms;
      for (let i = 0; i < ply; i++) if (moves[i].side === side) ms = moves[i].clock_ms;
      if (ply === moves.length) ms = final.clock[side + "_ms"];
      document.getElementById("clock-" + side).textContent = clockText(ms);
    }
    position.textContent = "Move " + ply + " of " + moves.length;
    document.querySelectorAll(".move-link").forEach(function (link) {
      if (Number(link.dataset.ply) === ply) link.setAttribute("aria-current", "step");
      else link.removeAttribute("aria-current");
    });
    if (ply === moves.length) {
      const winning = new Set(final.winning_cells.map(function (c) { return c[0] + ":" + c[1]; }));
      document.querySelectorAll("#board .cell").forEach(function (cell) {
        const column = Number(cell.closest(".board-column").dataset.column);
        cell.classList.toggle("winning", winning.has(column + ":" + cell.dataset.row));
      });
    }
  }

  function go(next) { ply = Math.max(0, Math.min(moves.length, next)); render(); }
  document.getElementById("replay-start").addEventListener("click", function () { go(0); });
  document.getElementById("replay-back").addEventListener("click", function () { go(ply - 1); });
  document.getElementById("replay-forward").addEventListener("click", function () { go(ply + 1); });
  document.getElementById("replay-end").addEventListener("click", function () { go(moves.length); });
  document.getElementById("move-list").addEventListener("click", function (event) {
    const link = event.target.closest(".move-link");
    if (link) go(Number(link.dataset.ply));
  });
  document.addEventListener("keydown", function (event) {
    if (event.key === "ArrowLeft") go(ply - 1);
    if (event.key === "ArrowRight") go(ply + 1);
  });
  render();
})();
