/* The donation page's « Ce don de 25,00 € ne vous coûte que 8,50 € après réduction d'impôt »,
   rewritten as the amount changes. The server gives the rate, the ceiling, the sentences and how
   it writes money (campaigns/views/donate.py); the sums are integers of cents, as on the server
   (selectors/tax_receipts.py: the reduction is rounded down to the cent). */
(function () {
  "use strict";

  function parseMinor(text, digits) {
    // As money.parse_amount: "25", "25,50", "25.50", "25 €".
    var cleaned = (text || "").replace(/[€$£\s\u00a0\u202f]/g, "");
    if (!/^\d{1,9}(?:[.,]\d{1,2})?$/.test(cleaned)) return null;
    var parts = cleaned.replace(",", ".").split(".");
    var decimals = (parts[1] || "");
    if (decimals.length > digits) return null;
    while (decimals.length < digits) decimals += "0";
    return parseInt(parts[0], 10) * Math.pow(10, digits) + (digits ? parseInt(decimals, 10) : 0);
  }

  function formatMinor(minor, f) {
    var scale = Math.pow(10, f.digits);
    var whole = String(Math.floor(minor / scale));
    var grouped = f.group ? whole.replace(/\B(?=(\d{3})+(?!\d))/g, f.group) : whole;
    var text = grouped;
    if (f.digits) text += f.decimal + String(minor % scale).padStart(f.digits, "0");
    return f.prefix + text + f.suffix;
  }

  function costMinor(amount, cfg) {
    var eligible = cfg.ceiling === null ? amount : Math.min(amount, cfg.ceiling);
    return amount - Math.floor(eligible * cfg.rate / 100);
  }

  function chosenAmount(form) {
    // The typed amount wins over a preset (the server reads the fields the same way).
    var typed = form.querySelector('.custom-amount input[name="amount"]');
    if (typed && typed.value.trim()) return {text: typed.value, typed: true};
    var preset = form.querySelector('input[type="radio"][name="amount"]:checked');
    return preset ? {text: preset.value, typed: false} : null;
  }

  function update(form) {
    var line = form.querySelector("#tax-line");
    if (!line) return;
    var cfg = JSON.parse(line.getAttribute("data-tax"));
    var chosen = chosenAmount(form);
    var amount = chosen ? parseMinor(chosen.text, cfg.format.digits) : null;
    var template = cfg.chosen;
    if (amount === null || amount <= 0) {
      amount = cfg.example;
      template = cfg.exampleText;
    }
    line.textContent = template.replace("{amount}", formatMinor(amount, cfg.format))
      .replace("{cost}", formatMinor(costMinor(amount, cfg), cfg.format));
  }

  function onChange(event) {
    var form = event.target.closest && event.target.closest("form.donate-form");
    if (form && event.target.name === "amount") update(form);
  }

  document.addEventListener("input", onChange);
  document.addEventListener("change", onChange);
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form.donate-form").forEach(update);
  });
})();
