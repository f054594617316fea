// Buttons marked data-print open the browser's print dialog (no inline handlers: the
// content security policy allows scripts from this site only).
document.querySelectorAll("[data-print]").forEach(function (button) {
  button.addEventListener("click", function () { window.print(); });
});
