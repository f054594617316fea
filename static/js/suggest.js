// Suggestions under a search box as the user types: products from GET /products/suggest.
// Any <input data-suggest-url="..."> inside a form gets them. Without this script the box is
// a plain search form, and Enter still searches: the list only offers shortcuts to products.
// Follows the ARIA combobox pattern (input + listbox, aria-activedescendant).
(function () {
  "use strict";
  var DELAY_MS = 150;
  var MAX_CACHED = 50;

  function attach(input, index) {
    var form = input.form;
    if (!form) return;
    var url = input.getAttribute("data-suggest-url");
    var list = document.createElement("ul");
    list.id = "suggest-list-" + index;
    list.className = "suggest-list";
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-label", input.getAttribute("aria-label") || "");
    list.hidden = true;
    form.appendChild(list);
    form.classList.add("suggest-form");

    input.setAttribute("role", "combobox");
    input.setAttribute("aria-autocomplete", "list");
    input.setAttribute("aria-controls", list.id);
    input.setAttribute("aria-expanded", "false");
    input.setAttribute("autocomplete", "off");

    var items = [];
    var active = -1;
    var timer = null;
    var pending = null;
    var composing = false;
    var shownFor = null;
    var cache = new Map();

    function close() {
      list.hidden = true;
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
      active = -1;
    }

    function highlight(index) {
      var options = list.children;
      if (active >= 0 && options[active]) {
        options[active].classList.remove("active");
        options[active].setAttribute("aria-selected", "false");
      }
      active = index;
      if (active >= 0 && options[active]) {
        options[active].classList.add("active");
        options[active].setAttribute("aria-selected", "true");
        input.setAttribute("aria-activedescendant", options[active].id);
        options[active].scrollIntoView({ block: "nearest" });
      } else {
        input.removeAttribute("aria-activedescendant");
      }
    }

    function go(index) {
      var target = items[index] && items[index].url;
      // Only a path on this site: the list never sends anyone elsewhere.
      if (target && target.charAt(0) === "/" && target.charAt(1) !== "/") {
        window.location.assign(target);
      }
    }

    function render(query, suggestions) {
      items = suggestions;
      shownFor = query;
      active = -1;
      list.textContent = "";
      if (!suggestions.length || input.value.trim() !== query) {
        close();
        return;
      }
      suggestions.forEach(function (item, i) {
        var option = document.createElement("li");
        option.id = list.id + "-" + i;
        option.className = "suggest-option";
        option.setAttribute("role", "option");
        option.setAttribute("aria-selected", "false");
        var name = document.createElement("span");
        name.className = "suggest-name";
        name.textContent = item.name;
        var meta = document.createElement("span");
        meta.className = "suggest-meta";
        meta.textContent = [item.origin, item.supplier].filter(Boolean).join(" · ");
        option.appendChild(name);
        option.appendChild(meta);
        // mousedown, not click: it comes before the input's blur would close the list.
        option.addEventListener("mousedown", function (event) {
          event.preventDefault();
          go(i);
        });
        list.appendChild(option);
      });
      list.hidden = false;
      input.setAttribute("aria-expanded", "true");
    }

    function fetchSuggestions() {
      var query = input.value.trim();
      if (!query) {
        close();
        return;
      }
      if (query === shownFor && items.length) {
        render(query, items);
        return;
      }
      if (cache.has(query)) {
        render(query, cache.get(query));
        return;
      }
      if (pending) pending.abort();
      var controller = typeof AbortController === "function" ? new AbortController() : null;
      pending = controller;
      var sep = url.indexOf("?") === -1 ? "?" : "&";
      fetch(url + sep + "q=" + encodeURIComponent(query), {
        headers: { Accept: "application/json" },
        credentials: "same-origin",
        signal: controller ? controller.signal : undefined,
      })
        .then(function (response) {
          if (!response.ok) throw new Error("suggest " + response.status);
          return response.json();
        })
        .then(function (data) {
          var suggestions = Array.isArray(data.suggestions) ? data.suggestions : [];
          if (cache.size >= MAX_CACHED) cache.delete(cache.keys().next().value);
          cache.set(query, suggestions);
          // An answer to an older prefix is dropped: the box has moved on.
          if (input.value.trim() === query) render(query, suggestions);
        })
        .catch(function () {
          // Offline or aborted: the box still searches on Enter; say nothing.
        });
    }

    function schedule() {
      clearTimeout(timer);
      if (composing) return; // a Chinese input method is still choosing characters
      timer = setTimeout(fetchSuggestions, DELAY_MS);
    }

    input.addEventListener("input", schedule);
    input.addEventListener("compositionstart", function () {
      composing = true;
    });
    input.addEventListener("compositionend", function () {
      composing = false;
      schedule();
    });
    input.addEventListener("focus", function () {
      if (input.value.trim() && input.value.trim() === shownFor && items.length) {
        render(shownFor, items);
      }
    });
    input.addEventListener("blur", function () {
      close();
    });
    input.addEventListener("keydown", function (event) {
      if (event.isComposing || composing) return;
      var open = !list.hidden && items.length;
      if (event.key === "ArrowDown" || event.key === "Down") {
        event.preventDefault();
        if (!open) {
          fetchSuggestions();
          return;
        }
        highlight(active + 1 >= items.length ? 0 : active + 1);
      } else if (event.key === "ArrowUp" || event.key === "Up") {
        if (!open) return;
        event.preventDefault();
        highlight(active <= 0 ? items.length - 1 : active - 1);
      } else if (event.key === "Enter") {
        if (open && active >= 0) {
          event.preventDefault();
          go(active);
        }
        // Otherwise the form submits: a full search for what was typed.
      } else if (event.key === "Escape" || event.key === "Esc") {
        if (open) {
          event.preventDefault();
          close();
        }
      }
    });
  }

  Array.prototype.forEach.call(document.querySelectorAll("input[data-suggest-url]"), attach);
})();
