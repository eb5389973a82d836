/* Paints text coloured by a series (a neuron, or bits saved over the n-gram): one <span> per
   character, built as one HTML string, its colour a class per level of the palette (the
   levels are computed by the server: lstmviz.colours.ColourScale.levels). Every painted
   panel works the same way: the panel's id is given by the page, the hover line is the
   element named in the panel's data-hover. */
(function () {
  /* One CSS class per palette level (.cv0 ... .cv255), made once: a class per character is
     much cheaper for the browser to lay out than an inline style per character. The levels
     and the palette come from the server (lstmviz.colours), so the colours are computed in
     one place. */
  var classesFor = null;
  function colourClasses(palette) {
    var key = JSON.stringify(palette);
    if (classesFor === key) { return; }
    var rules = palette.map(function (entry, level) {
      return ".cv" + level + " { background: rgb(" + entry.slice(0, 3).join(", ") + ");" + (entry[3] ? " color: #fff;" : "") + " }";
    });
    var sheet = document.getElementById("lstmviz-colours");
    if (!sheet) {
      sheet = document.createElement("style");
      sheet.id = "lstmviz-colours";
      document.head.appendChild(sheet);
    }
    sheet.textContent = rules.join("\n");
    classesFor = key;
  }
  function escape(ch) {
    return ch === "<" ? "&lt;" : ch === ">" ? "&gt;" : ch === "&" ? "&amp;" : ch;
  }
  /* Characters a reader cannot see, as the one table says (assets/characters.js, made from
     lstmviz/core/characters.py): a name where one is spoken of, the newline's glyph in text,
     and any other of Unicode's Other and Separator characters as its code (as code_of writes
     it). Read at the first paint, whatever order the assets load in. */
  var shown = null;
  function characters() {
    if (!shown) {
      var table = window.lstmvizCharacters;
      var classes = table.hiddenCategories.map(function (c) { return "\\p{" + c + "}"; }).join("");
      shown = { names: table.names, newline: table.glyphs["\n"] + "\n", hidden: new RegExp("^[" + classes + "]$", "u") };
    }
    return shown;
  }
  function codeOf(ch) {
    var hex = ch.codePointAt(0).toString(16);
    return hex.length <= 4 ? "\\u" + ("0000" + hex).slice(-4) : "\\U" + ("00000000" + hex).slice(-8);
  }
  function shownChar(ch) {
    var c = characters();
    if (Object.prototype.hasOwnProperty.call(c.names, ch)) { return c.names[ch]; }
    return c.hidden.test(ch) ? codeOf(ch) : ch;
  }
  function decode(b64, Type) {
    var bytes = Uint8Array.from(atob(b64), function (c) { return c.charCodeAt(0); });
    return new Type(bytes.buffer);
  }
  /* The compact payload (see lstmviz.render.values_payload) as arrays, one entry per
     character: chars, values; the top-k guesses (characters) and their probabilities (in
     units of 1/10000) stay flat, k per character, and are read only on hover. */
  function unpack(data) {
    return { start: data.start, label: data.label, palette: data.palette, k: data.top_k, clickable: data.clickable !== false,
             chars: Array.from(data.text), values: decode(data.values, Float32Array), levels: decode(data.levels, Uint8Array),
             top: Array.from(data.top), probs: decode(data.probs, Uint16Array) };
  }
  function hover(event) {
    var span = event.target.closest(".ch");
    var panel = event.currentTarget;
    var tip = document.getElementById(panel.dataset.hover || "hover-info");
    if (!span || !tip || !panel.lstmvizData) { return; }
    var d = panel.lstmvizData, i = +span.dataset.i;
    var guesses = [];
    for (var k = i * d.k; k < (i + 1) * d.k; k++) {
      guesses.push("'" + shownChar(d.top[k]) + "' " + (d.probs[k] / 100).toFixed(1) + "%");
    }
    tip.textContent = "position " + (d.start + i) + "  char '" + shownChar(d.chars[i]) + "'  " + d.label + " = " +
      d.values[i].toFixed(3) + (d.k ? "  |  next-char guesses: " + guesses.join(", ") : "");
  }
  function paint(data, panelId) {
    var panel = document.getElementById(panelId);
    if (!panel || !data) { return ""; }
    // The same data again (the URL changed for another part of the page, say a click for
    // app/why.py): the panel already shows it.
    var same = [data.start, data.label, data.text, data.values, data.levels, data.probs, data.clickable].join("\u0000");
    if (panel.lstmvizData && panel.lstmvizSame === same) { return data.label; }
    void panel.offsetHeight;  // layout other updates left pending is theirs, not the paint's
    var t0 = performance.now();
    data = unpack(data);
    colourClasses(data.palette);
    var parts = new Array(data.chars.length), newline = characters().newline;
    for (var i = 0; i < data.chars.length; i++) {
      var ch = data.chars[i];
      parts[i] = '<span class="ch cv' + data.levels[i] + '" data-i="' + i + '">' +
        (ch === "\n" ? newline : escape(ch)) + "</span>";
    }
    panel.innerHTML = parts.join("");
    void panel.offsetHeight;  // the layout of the new text is part of the paint time
    panel.lstmvizData = data;
    panel.lstmvizSame = same;
    if (window.lstmvizWhyShade) { window.lstmvizWhyShade(panel); }  // a click's bars (assets/why.js), on the new text
    panel.dataset.paintMs = (performance.now() - t0).toFixed(2);
    panel.dataset.label = data.label;
    if (!panel.lstmvizHover) {
      panel.addEventListener("mouseover", hover);
      panel.lstmvizHover = true;
    }
    return data.label;
  }
  /* The store characters start:stop under the user's selection inside a painted panel, or
     null when nothing in it is selected. */
  function selectedRange(panelId) {
    var panel = document.getElementById(panelId);
    var sel = window.getSelection();
    if (!panel || !panel.lstmvizData || !sel || sel.isCollapsed) { return null; }
    function indexOf(node) {
      var el = node && (node.nodeType === 1 ? node : node.parentElement);
      var span = el && el.closest(".ch");
      return span && panel.contains(span) ? +span.dataset.i : null;
    }
    var a = indexOf(sel.anchorNode), b = indexOf(sel.focusNode);
    if (a === null || b === null) { return null; }
    var start = panel.lstmvizData.start;
    return [start + Math.min(a, b), start + Math.max(a, b) + 1];
  }
  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    lstmviz: {
      paintText: function (data) { return paint(data, "text-panel"); },
      paintModelText: function (data) { return paint(data, "model-text-panel"); },
      paintCompareA: function (data) { return paint(data, "cmp-text-a"); },
      paintCompareB: function (data) { return paint(data, "cmp-text-b"); },
      paintCompareLoss: function (data) { return paint(data, "cmp-text-loss"); },
      paintLive: function (data) { return data ? paint(data, data.panel) : ""; },
      paintGenerated: function (data) {
        if (!data) { return ""; }
        if (data.plain) { paint(data.plain, "gen-text-plain"); }  // none while nothing is held
        return paint(data.held, "gen-text-held");
      },
      selectionToDiscover: function (clicks, search) {
        var nothing = window.dash_clientside.no_update;
        if (!clicks) { return [nothing, nothing, nothing]; }
        var range = selectedRange("text-panel");
        if (!range) { return [nothing, nothing, "Select some characters in the text first (drag across them)."]; }
        var q = new URLSearchParams(search || "");
        var out = new URLSearchParams();
        if (q.get("store")) { out.set("store", q.get("store")); }
        out.set("range", range[0] + ":" + range[1]);
        return ["/discover", "?" + out.toString(), null];
      }
    }
  });
})();
