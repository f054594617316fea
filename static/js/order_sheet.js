// The quick order sheet: show the tier price each typed quantity reaches and a running total.
// The server decides the real price at submission; this only helps the buyer see it coming.
(function () {
  "use strict";
  var sheet = document.getElementById("order-sheet");
  if (!sheet) return;
  var totalOut = document.getElementById("sheet-total");
  var linesOut = document.getElementById("sheet-lines");
  var yuan = function (fen) {
    var sign = fen < 0 ? "-" : "";
    fen = Math.abs(fen);
    var whole = Math.floor(fen / 100).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
    return sign + "¥" + whole + "." + String(fen % 100).padStart(2, "0");
  };
  // Full-width digits from a Chinese input method count too.
  var parse = function (text) {
    text = text.replace(/[\uFF10-\uFF19]/g, function (c) {
      return String.fromCharCode(c.charCodeAt(0) - 0xfee0);
    }).replace(/\uFF0E/g, ".").trim();
    if (text === "") return null;
    if (!/^\d+(\.\d{1,3})?$/.test(text)) return NaN;
    return Number(text);
  };
  var rows = Array.prototype.slice.call(sheet.querySelectorAll("tr[data-tiers]"));
  rows.forEach(function (row) {
    row.tiers = row.dataset.tiers.split(" ").filter(Boolean).map(function (pair) {
      var parts = pair.split(":");
      return [Number(parts[0]), Number(parts[1])];
    });
  });
  var update = function () {
    var total = 0, count = 0;
    rows.forEach(function (row) {
      var input = row.querySelector("input");
      var priceCell = row.querySelector("[data-role=price]");
      var amountCell = row.querySelector("[data-role=amount]");
      var quantity = parse(input.value);
      row.classList.remove("sheet-warn");
      if (quantity === null || quantity === 0) {
        priceCell.textContent = "—";
        amountCell.textContent = "—";
        return;
      }
      var price = null;
      row.tiers.forEach(function (tier) { if (quantity >= tier[0]) price = tier[1]; });
      var caseSize = Number(row.dataset.case), minimum = Number(row.dataset.min);
      var whole = Math.abs(quantity / caseSize - Math.round(quantity / caseSize)) < 1e-9;
      if (isNaN(quantity) || price === null || quantity < minimum || !whole) {
        row.classList.add("sheet-warn");
        priceCell.textContent = isNaN(quantity) ? "?" : (quantity < minimum ? "≥" + row.dataset.min : "×" + row.dataset.case);
        amountCell.textContent = "—";
        return;
      }
      var amount = Math.round(price * quantity);
      priceCell.textContent = yuan(price);
      amountCell.textContent = yuan(amount);
      total += amount;
      count += 1;
    });
    totalOut.textContent = yuan(total);
    linesOut.textContent = count ? "(" + count + ")" : "";
  };
  sheet.addEventListener("input", update);
  update();
})();
