/* Paints text coloured by a neuron: one <span> per character, built as one HTML string.
   The colour of a value is computed exactly as lstmviz.render.colour_of does. */
(function () {
  function colourOf(value, limit, stops) {
    var t = limit > 0 ? Math.min(1, Math.max(0, 0.5 + 0.5 * value / limit)) : 0.5;
    for (var k = 1; k < stops.length; k++) {
      if (t <= stops[k][0]) {
        var f = (t - stops[k - 1][0]) / (stops[k][0] - stops[k - 1][0]);
        var a = stops[k - 1][1], b = stops[k][1];
        return "rgb(" + [0, 1, 2].map(function (i) { return Math.round(a[i] + (b[i] - a[i]) * f); }).join(", ") + ")";
      }
    }
    var last = stops[stops.length - 1][1];
    return "rgb(" + last.join(", ") + ")";
  }
  function escape(ch) {
    return ch === "<" ? "&lt;" : ch === ">" ? "&gt;" : ch === "&" ? "&amp;" : ch;
  }
  function paint(data, panelId) {
    var panel = document.getElementById(panelId);
    if (!panel || !data) { return; }
    var t0 = performance.now();
    var parts = new Array(data.chars.length);
    for (var i = 0; i < data.chars.length; i++) {
      var ch = data.chars[i];
      var shown = ch === "\n" ? "\u23ce\n" : escape(ch);
      parts[i] = '<span class="ch" data-i="' + i + '" style="background:' +
        colourOf(data.values[i], data.limit, data.stops) + '">' + shown + "</span>";
    }
    panel.innerHTML = parts.join("");
    panel.lstmvizData = data;
    panel.dataset.paintMs = (performance.now() - t0).toFixed(2);
    panel.dataset.neuron = data.neuron;
  }
  function hover(event) {
    var span = event.target.closest(".ch");
    var panel = event.currentTarget;
    var tip = document.getElementById("hover-info");
    if (!span || !tip || !panel.lstmvizData) { return; }
    var d = panel.lstmvizData, i = +span.dataset.i;
    var ch = d.chars[i] === "\n" ? "\\n" : d.chars[i] === " " ? "space" : d.chars[i];
    var guesses = [];
    for (var k = 0; k < d.top[i].length; k++) {
      var g = d.top[i][k] === "\n" ? "\\n" : d.top[i][k] === " " ? "space" : d.top[i][k];
      guesses.push("'" + g + "' " + (100 * d.probs[i][k]).toFixed(1) + "%");
    }
    tip.textContent = "position " + (d.start + i) + "  char '" + ch + "'  " + d.neuron + " = " +
      d.values[i].toFixed(3) + "  |  next-char guesses: " + guesses.join(", ");
  }
  window.dash_clientside = Object.assign({}, window.dash_clientside, {
    lstmviz: {
      paintText: function (data) {
        paint(data, "text-panel");
        var panel = document.getElementById("text-panel");
        if (panel && !panel.lstmvizHover) {
          panel.addEventListener("mouseover", hover);
          panel.lstmvizHover = true;
        }
        return data ? data.neuron : "";
      }
    }
  });
  window.lstmvizColourOf = colourOf;
})();
